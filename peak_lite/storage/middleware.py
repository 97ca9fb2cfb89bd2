"""One transaction per WSGI request, committed before the response leaves."""

import logging

import transaction

log = logging.getLogger('peak_lite.storage')

_FAILED_BODY = b"The request's changes could not be saved; nothing was changed.\n"


class TransactionMiddleware:
    """WSGI middleware that runs each request in its own transaction.

    - The transaction begins before the application is called.
    - The application's whole response (``start_response``, ``write()`` calls
      and the returned iterable) is collected first.  Then the transaction
      commits, and only then are the status and body handed to the server.
      So a client that received a 2xx/3xx/4xx response knows its writes are
      committed, and a failed commit becomes a 500 with nothing saved.
    - It aborts instead when the application raises (the exception then
      propagates to the server), when the status is 5xx, or when the
      transaction is doomed (``transaction.doom()``): a doomed request still
      gets its response.
    - ``environ['transaction.manager']`` is the transaction manager used.

    The cost of that guarantee is that responses are buffered, not streamed.
    """

    def __init__(self, app, manager=None):
        self.app = app
        self.manager = transaction.manager if manager is None else manager

    def __call__(self, environ, start_response):
        manager = self.manager
        environ['transaction.manager'] = manager
        txn = manager.begin()
        response = {}
        body = []

        def captureStart(status, headers, exc_info=None):
            response.update(status=status, headers=headers, exc_info=exc_info)
            return body.append

        try:
            result = self.app(environ, captureStart)
            try:
                for chunk in result:
                    body.append(chunk)
            finally:
                if hasattr(result, 'close'):
                    result.close()
            if 'status' not in response:
                raise RuntimeError(
                    f"WSGI application {self.app!r} returned without calling start_response")
        except BaseException:
            txn.abort()
            raise
        status = response['status']
        if _isServerError(status) or txn.isDoomed():
            txn.abort()
        else:
            try:
                txn.commit()
            except Exception:
                log.error("commit failed for %s %s; answering 500",
                          environ.get('REQUEST_METHOD'), environ.get('PATH_INFO'),
                          exc_info=True)
                txn.abort()
                start_response('500 Internal Server Error', [
                    ('Content-Type', 'text/plain; charset=utf-8'),
                    ('Content-Length', str(len(_FAILED_BODY)))])
                return [_FAILED_BODY]
        start_response(status, response['headers'], response['exc_info'])
        return body


def _isServerError(status):
    code = status.split(None, 1)[0] if status else ''
    return code.isdigit() and int(code) >= 500
