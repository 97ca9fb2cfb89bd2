/* The loops a gateway runs once per record, per parameter or per header,
 * compiled: splitting a FastCGI byte stream into records and name-value pairs
 * into a dict, and framing the end of a response (fcgi_protocol.py); checking
 * a WSGI application's status and headers and writing them as header lines
 * (wsgi.py) or, commonly, as a whole HTTP head (http_server.py); and keeping
 * an HTTP request's header fields as llhttp reports them (http_parse.py).
 *
 * Each only ever answers for input that is well formed.  On anything else
 * (a bad version, a truncated pair, too many pairs, a header PEP 3333 or
 * HTTP refuses) it stops, returns None or False, and the pure-Python code,
 * which is always there, looks at the same input and raises the error with
 * its message.  So the errors and their wording live in one place, and this
 * module can be missing (no compiler at install) with no change in behaviour.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <strings.h>
#include <structmember.h>

#define HEADER_LEN 8

/* splitRecords(data) -> (records, position)
 *
 * ``records`` is a list of (type, requestId, content bytes) for every whole
 * record of version 1 from the start of ``data``; ``position`` is where the
 * first record not taken starts: an incomplete one, or a header whose version
 * is not 1 (the caller decides what that means).
 */
static PyObject *
splitRecords(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *data = view.buf;
    Py_ssize_t end = view.len, pos = 0;
    PyObject *records = PyList_New(0);
    if (records == NULL)
        goto fail;
    while (end - pos >= HEADER_LEN) {
        const unsigned char *h = data + pos;
        if (h[0] != 1)
            break;
        Py_ssize_t clen = (h[4] << 8) | h[5];
        Py_ssize_t stop = pos + HEADER_LEN + clen;
        if (stop + h[6] > end)
            break;
        PyObject *record = Py_BuildValue("(iiy#)", h[1], (h[2] << 8) | h[3],
                                         (const char *)h + HEADER_LEN, clen);
        if (record == NULL)
            goto fail;
        int failed = PyList_Append(records, record);
        Py_DECREF(record);
        if (failed)
            goto fail;
        pos = stop + h[6];
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(Nn)", records, pos);
fail:
    Py_XDECREF(records);
    PyBuffer_Release(&view);
    return NULL;
}

/* A length of 1 byte, or of 4 with the high bit set; -1 when it runs past ``end``. */
static Py_ssize_t
readLength(const unsigned char *data, Py_ssize_t *pos, Py_ssize_t end)
{
    Py_ssize_t p = *pos;
    if (p >= end)
        return -1;
    if (!(data[p] & 0x80)) {
        *pos = p + 1;
        return data[p];
    }
    if (p + 4 > end)
        return -1;
    *pos = p + 4;
    return ((Py_ssize_t)(data[p] & 0x7F) << 24) | (data[p + 1] << 16)
        | (data[p + 2] << 8) | data[p + 3];
}

/* splitParams(data, maxPairs) -> dict of str (latin-1), or None
 *
 * None whenever ``data`` is not a whole run of at most ``maxPairs`` pairs: the
 * Python decoder then raises the error.  A name given twice keeps its last value.
 */
static PyObject *
splitParams(PyObject *module, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t maxPairs;
    if (!PyArg_ParseTuple(args, "y*n", &view, &maxPairs))
        return NULL;
    const unsigned char *data = view.buf;
    Py_ssize_t end = view.len, pos = 0, pairs = 0;
    PyObject *environ = PyDict_New();
    if (environ == NULL)
        goto fail;
    while (pos < end) {
        Py_ssize_t nlen = readLength(data, &pos, end);
        Py_ssize_t vlen = nlen < 0 ? -1 : readLength(data, &pos, end);
        if (vlen < 0 || nlen > end - pos || vlen > end - pos - nlen || ++pairs > maxPairs) {
            Py_DECREF(environ);
            PyBuffer_Release(&view);
            Py_RETURN_NONE;
        }
        PyObject *name = PyUnicode_DecodeLatin1((const char *)data + pos, nlen, NULL);
        if (name == NULL)
            goto fail;
        PyObject *value = PyUnicode_DecodeLatin1((const char *)data + pos + nlen, vlen, NULL);
        if (value == NULL) {
            Py_DECREF(name);
            goto fail;
        }
        int failed = PyDict_SetItem(environ, name, value);
        Py_DECREF(name);
        Py_DECREF(value);
        if (failed)
            goto fail;
        pos += nlen + vlen;
    }
    PyBuffer_Release(&view);
    return environ;
fail:
    Py_XDECREF(environ);
    PyBuffer_Release(&view);
    return NULL;
}

/* A tchar of RFC 9110 5.6.2. */
static int
isTokenChar(Py_UCS4 c)
{
    if (c >= 128)
        return 0;
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", (int)c) != NULL;
}

static const char *const hopByHop[] = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailers", "transfer-encoding", "upgrade", NULL
};

/* One (name, value) as wsgi.checkHeaders wants it. */
static int
headerValid(PyObject *item)
{
    if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2)
        return 0;
    PyObject *name = PyTuple_GET_ITEM(item, 0), *value = PyTuple_GET_ITEM(item, 1);
    if (!PyUnicode_CheckExact(name) || !PyUnicode_CheckExact(value)
            || PyUnicode_READY(name) < 0 || PyUnicode_READY(value) < 0)
        return 0;
    Py_ssize_t nlen = PyUnicode_GET_LENGTH(name), vlen = PyUnicode_GET_LENGTH(value);
    /* A name of token characters is ASCII, so one byte per character. */
    if (nlen == 0 || PyUnicode_KIND(name) != PyUnicode_1BYTE_KIND)
        return 0;
    const unsigned char *n = PyUnicode_1BYTE_DATA(name);
    for (Py_ssize_t i = 0; i < nlen; i++)
        if (!isTokenChar(n[i]))
            return 0;
    /* Latin-1, and no CTL but the tab (RFC 9110 5.5). */
    if (PyUnicode_KIND(value) != PyUnicode_1BYTE_KIND)
        return 0;
    const unsigned char *v = PyUnicode_1BYTE_DATA(value);
    for (Py_ssize_t i = 0; i < vlen; i++)
        if ((v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7F)
            return 0;
    if (nlen == 14 && strncasecmp((const char *)n, "content-length", 14) == 0) {
        if (vlen == 0)
            return 0;
        for (Py_ssize_t i = 0; i < vlen; i++)
            if (v[i] < '0' || v[i] > '9')
                return 0;
    }
    for (const char *const *hop = hopByHop; *hop; hop++)
        if ((size_t)nlen == strlen(*hop) && strncasecmp((const char *)n, *hop, nlen) == 0)
            return 0;
    return 1;
}

/* headersValid(headers) -> bool
 *
 * True when ``headers`` is a list of (str, str) that wsgi.checkHeaders
 * accepts; False otherwise, and checkHeaders then says what is wrong.
 */
static PyObject *
headersValid(PyObject *module, PyObject *headers)
{
    if (!PyList_CheckExact(headers))
        Py_RETURN_FALSE;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(headers); i++)
        if (!headerValid(PyList_GET_ITEM(headers, i)))
            Py_RETURN_FALSE;
    Py_RETURN_TRUE;
}

/* statusValid(status) -> bool
 *
 * True when wsgi.checkStatus accepts ``status``: a str of three digits (the
 * first not 0), a space, and a reason without CR, LF or NUL.
 */
static PyObject *
statusValid(PyObject *module, PyObject *status)
{
    if (!PyUnicode_CheckExact(status) || PyUnicode_READY(status) < 0)
        Py_RETURN_FALSE;
    Py_ssize_t n = PyUnicode_GET_LENGTH(status);
    int kind = PyUnicode_KIND(status);
    const void *data = PyUnicode_DATA(status);
    if (n < 4)
        Py_RETURN_FALSE;
    Py_UCS4 c0 = PyUnicode_READ(kind, data, 0), c1 = PyUnicode_READ(kind, data, 1),
            c2 = PyUnicode_READ(kind, data, 2);
    if (c0 < '1' || c0 > '9' || c1 < '0' || c1 > '9' || c2 < '0' || c2 > '9'
            || PyUnicode_READ(kind, data, 3) != ' ')
        Py_RETURN_FALSE;
    for (Py_ssize_t i = 4; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c == '\r' || c == '\n' || c == 0)
            Py_RETURN_FALSE;
    }
    Py_RETURN_TRUE;
}

/* The latin-1 bytes of an exact str whose every character fits, else NULL. */
static const char *
latin1(PyObject *text, Py_ssize_t *size)
{
    if (!PyUnicode_CheckExact(text) || PyUnicode_READY(text) < 0
            || PyUnicode_KIND(text) != PyUnicode_1BYTE_KIND)
        return NULL;
    *size = PyUnicode_GET_LENGTH(text);
    return (const char *)PyUnicode_1BYTE_DATA(text);
}

/* The digits of a Content-Length as a number; -1 when not 1 to 18 digits. */
static long long
digits(const char *text, Py_ssize_t n)
{
    if (n < 1 || n > 18)
        return -1;
    long long value = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        value = value * 10 + (text[i] - '0');
    }
    return value;
}

/* The header lines of ``headers`` (see headLines) as new bytes, with the
 * Content-Length declared in *declared (-1: none).  NULL with no exception
 * set when the Python code must look at them; NULL with one on a failure. */
static PyObject *
buildLines(PyObject *headers, int dropContentLength, long long *declared)
{
    if (!PyList_CheckExact(headers))
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(headers), size = 0;
    *declared = -1;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(headers, i);
        Py_ssize_t nlen, vlen;
        const char *name, *value;
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2
                || (name = latin1(PyTuple_GET_ITEM(item, 0), &nlen)) == NULL
                || (value = latin1(PyTuple_GET_ITEM(item, 1), &vlen)) == NULL)
            return NULL;
        if (nlen == 14 && strncasecmp(name, "content-length", 14) == 0) {
            long long length = digits(value, vlen);
            if (length < 0 || (*declared >= 0 && length != *declared))
                return NULL;
            *declared = length;
            if (dropContentLength)
                continue;
        }
        size += nlen + 2 + vlen + 2;
    }
    PyObject *lines = PyBytes_FromStringAndSize(NULL, size);
    if (lines == NULL)
        return NULL;
    char *out = PyBytes_AS_STRING(lines);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(headers, i);
        Py_ssize_t nlen = 0, vlen = 0;
        const char *name = latin1(PyTuple_GET_ITEM(item, 0), &nlen);
        const char *value = latin1(PyTuple_GET_ITEM(item, 1), &vlen);
        if (dropContentLength && nlen == 14 && strncasecmp(name, "content-length", 14) == 0)
            continue;
        memcpy(out, name, nlen);
        memcpy(out + nlen, ": ", 2);
        memcpy(out + nlen + 2, value, vlen);
        memcpy(out + nlen + 2 + vlen, "\r\n", 2);
        out += nlen + vlen + 4;
    }
    return lines;
}

/* headLines(headers, dropContentLength) -> (bytes, declared), or None
 *
 * wsgi.headLines, compiled: one "Name: value" CRLF line per header in
 * latin-1, and the Content-Length declared (None if none).  None when a header
 * is not a pair of latin-1 str, or Content-Length is given twice with
 * different values or is not a number of at most 18 digits: the Python code
 * then frames the head or raises.
 */
static PyObject *
headLines(PyObject *module, PyObject *args)
{
    PyObject *headers;
    int dropContentLength;
    long long declared;
    if (!PyArg_ParseTuple(args, "Op", &headers, &dropContentLength))
        return NULL;
    PyObject *lines = buildLines(headers, dropContentLength, &declared);
    if (lines == NULL) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    if (declared < 0)
        return Py_BuildValue("(NO)", lines, Py_None);
    return Py_BuildValue("(NL)", lines, declared);
}

/* httpHead(status, headers, body, close) -> (bytes, declared), or None
 *
 * http_server.HTTPResponse.frameHead for its common case, compiled: a status
 * of 200 to 599 but 204 and 304, a Content-Length declared, and a body that is
 * None (not known yet) or a list of bytes of exactly that length; the request
 * is not HEAD (the caller checks).  The head: the status line, the header
 * lines, "Connection: close" if ``close``, the empty line.  None for anything
 * else: the Python code frames it.
 */
static PyObject *
httpHead(PyObject *module, PyObject *args)
{
    PyObject *status, *headers, *body;
    int close;
    if (!PyArg_ParseTuple(args, "OOOp", &status, &headers, &body, &close))
        return NULL;
    Py_ssize_t slen;
    const char *s = latin1(status, &slen);
    if (s == NULL || slen < 4 || s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '9'
            || s[2] < '0' || s[2] > '9' || s[3] != ' '
            || (s[0] == '2' && s[1] == '0' && s[2] == '4')
            || (s[0] == '3' && s[1] == '0' && s[2] == '4'))
        Py_RETURN_NONE;
    long long declared;
    if (body != Py_None) {
        if (!PyList_CheckExact(body))
            Py_RETURN_NONE;
    }
    PyObject *lines = buildLines(headers, 0, &declared);
    if (lines == NULL) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    if (declared < 0)
        goto python;
    if (body != Py_None) {
        long long total = 0;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(body); i++) {
            PyObject *chunk = PyList_GET_ITEM(body, i);
            if (!PyBytes_CheckExact(chunk))
                goto python;
            total += PyBytes_GET_SIZE(chunk);
        }
        if (total != declared)
            goto python;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(lines);
    Py_ssize_t size = 9 + slen + 2 + n + (close ? 19 : 0) + 2;
    PyObject *head = PyBytes_FromStringAndSize(NULL, size);
    if (head == NULL) {
        Py_DECREF(lines);
        return NULL;
    }
    char *out = PyBytes_AS_STRING(head);
    memcpy(out, "HTTP/1.1 ", 9);
    memcpy(out + 9, s, slen);
    memcpy(out + 9 + slen, "\r\n", 2);
    out += 11 + slen;
    memcpy(out, PyBytes_AS_STRING(lines), n);
    out += n;
    Py_DECREF(lines);
    if (close) {
        memcpy(out, "Connection: close\r\n", 19);
        out += 19;
    }
    memcpy(out, "\r\n", 2);
    return Py_BuildValue("(NL)", head, declared);
python:
    Py_DECREF(lines);
    Py_RETURN_NONE;
}

static void
recordHeader(unsigned char *h, int type, long requestId, Py_ssize_t length, int padding)
{
    h[0] = 1;
    h[1] = (unsigned char)type;
    h[2] = (unsigned char)(requestId >> 8);
    h[3] = (unsigned char)requestId;
    h[4] = (unsigned char)(length >> 8);
    h[5] = (unsigned char)length;
    h[6] = (unsigned char)padding;
    h[7] = 0;
}

/* lastOutput(requestId, data, appStatus) -> bytes, or None
 *
 * fcgi_protocol.encodeLastOutput: ``data`` as one FCGI_STDOUT record unless
 * empty, the empty one that ends the stream, and FCGI_END_REQUEST.  None when
 * a number is out of its field's range: the Python encoder then raises.
 */
static PyObject *
lastOutput(PyObject *module, PyObject *args)
{
    long requestId;
    long long appStatus;
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "ly*L", &requestId, &view, &appStatus))
        return NULL;
    Py_ssize_t n = view.len;
    if (requestId < 0 || requestId > 0xFFFF || appStatus < 0 || appStatus > 0xFFFFFFFFLL
            || n > 0xFFFF) {
        PyBuffer_Release(&view);
        Py_RETURN_NONE;
    }
    int padding = (8 - n % 8) % 8;
    Py_ssize_t first = n ? 8 + n + padding : 0;
    PyObject *result = PyBytes_FromStringAndSize(NULL, first + 24);
    if (result == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    if (n) {
        recordHeader(out, 6, requestId, n, padding);          /* FCGI_STDOUT */
        memcpy(out + 8, view.buf, n);
        memset(out + 8 + n, 0, padding);
        out += first;
    }
    PyBuffer_Release(&view);
    recordHeader(out, 6, requestId, 0, 0);                    /* the end of FCGI_STDOUT */
    recordHeader(out + 8, 3, requestId, 8, 0);                /* FCGI_END_REQUEST */
    out[16] = (unsigned char)(appStatus >> 24);
    out[17] = (unsigned char)(appStatus >> 16);
    out[18] = (unsigned char)(appStatus >> 8);
    out[19] = (unsigned char)appStatus;
    memset(out + 20, 0, 4);                                   /* FCGI_REQUEST_COMPLETE */
    return result;
}

/* FieldLines: http_parse.FieldLines, compiled; ``add`` is httptools' on_header.
 *
 * ``add`` is called with each header field's (name, value) bytes: it keeps them in a
 * flat list [name, value, ...] and adds the field's size to ``size`` (the
 * head's size so far, the request-target included).  A field past
 * ``maxField`` bytes, one past ``maxFields`` fields or a head past
 * ``maxHead`` bytes calls ``tooBig(name, fieldSize, fields, headSize)``,
 * which raises.  ``take()`` returns the list and starts an empty one.
 */
typedef struct {
    PyObject_HEAD
    PyObject *raw;
    PyObject *tooBig;
    Py_ssize_t size, maxField, maxFields, maxHead;
} FieldLines;

static int
FieldLines_init(FieldLines *self, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"maxField", "maxFields", "maxHead", "tooBig", NULL};
    PyObject *tooBig;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nnnO", names, &self->maxField,
                                     &self->maxFields, &self->maxHead, &tooBig))
        return -1;
    PyObject *raw = PyList_New(0);
    if (raw == NULL)
        return -1;
    Py_XSETREF(self->raw, raw);
    Py_INCREF(tooBig);
    Py_XSETREF(self->tooBig, tooBig);
    self->size = 0;
    return 0;
}

/* ``tooBig`` is usually a bound method of the reader that holds this object:
 * a cycle, so the collector must see through it. */
static int
FieldLines_traverse(FieldLines *self, visitproc visit, void *arg)
{
    Py_VISIT(self->raw);
    Py_VISIT(self->tooBig);
    return 0;
}

static int
FieldLines_clear(FieldLines *self)
{
    Py_CLEAR(self->raw);
    Py_CLEAR(self->tooBig);
    return 0;
}

static void
FieldLines_dealloc(FieldLines *self)
{
    PyObject_GC_UnTrack(self);
    FieldLines_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
FieldLines_add(FieldLines *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "add(name, value) takes two bytes");
        return NULL;
    }
    if (self->raw == NULL || self->tooBig == NULL) {
        PyErr_SetString(PyExc_ValueError, "FieldLines is not initialised");
        return NULL;
    }
    PyObject *name = args[0], *value = args[1];
    Py_ssize_t field = PyBytes_GET_SIZE(name) + PyBytes_GET_SIZE(value) + 4;
    Py_ssize_t count = PyList_GET_SIZE(self->raw) / 2;
    self->size += field;
    if (field > self->maxField || count >= self->maxFields || self->size > self->maxHead)
        return PyObject_CallFunction(self->tooBig, "Onnn", name, field, count, self->size);
    if (PyList_Append(self->raw, name) < 0 || PyList_Append(self->raw, value) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
FieldLines_take(FieldLines *self, PyObject *unused)
{
    if (self->raw == NULL) {
        PyErr_SetString(PyExc_ValueError, "FieldLines is not initialised");
        return NULL;
    }
    PyObject *fresh = PyList_New(0);
    if (fresh == NULL)
        return NULL;
    PyObject *raw = self->raw;
    self->raw = fresh;
    self->size = 0;
    return raw;
}

static PyMethodDef FieldLines_methods[] = {
    {"add", (PyCFunction)(void (*)(void))FieldLines_add, METH_FASTCALL,
     "add(name, value): keep one field, bounded (httptools' on_header)."},
    {"take", (PyCFunction)FieldLines_take, METH_NOARGS,
     "take() -> [name, value, ...] of the fields so far; start afresh (size 0)."},
    {NULL, NULL, 0, NULL}
};

static PyMemberDef FieldLines_members[] = {
    {"size", T_PYSSIZET, offsetof(FieldLines, size), 0, "bytes of the head so far"},
    {NULL, 0, 0, 0, NULL}
};

static PyTypeObject FieldLinesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "peak_lite.running.gateways._speedups.FieldLines",
    .tp_basicsize = sizeof(FieldLines),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "FieldLines(maxField, maxFields, maxHead, tooBig): see http_parse.FieldLines.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)FieldLines_init,
    .tp_dealloc = (destructor)FieldLines_dealloc,
    .tp_traverse = (traverseproc)FieldLines_traverse,
    .tp_clear = (inquiry)FieldLines_clear,
    .tp_methods = FieldLines_methods,
    .tp_members = FieldLines_members,
};

/* fieldsOf(raw, keys, environKey, watched) -> (fields, watchedFields)
 *
 * http_parse.fieldsOf, compiled: the raw [name, value, ...] of a head as a
 * dict {environ key: value str} (a key given twice: its values joined with
 * ","), and the fields whose key is in ``watched`` as [(key, raw value)].
 * ``keys`` caches each name's key (None: drop the field); ``environKey(name)``
 * computes one it lacks.
 */
static PyObject *
fieldsOf(PyObject *module, PyObject *args)
{
    PyObject *raw, *keys, *environKey, *watched;
    if (!PyArg_ParseTuple(args, "O!O!OO", &PyList_Type, &raw, &PyDict_Type, &keys,
                          &environKey, &watched))
        return NULL;
    PyObject *fields = PyDict_New(), *seen = PyList_New(0), *key = NULL, *text = NULL;
    if (fields == NULL || seen == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i + 1 < PyList_GET_SIZE(raw); i += 2) {
        PyObject *name = PyList_GET_ITEM(raw, i), *value = PyList_GET_ITEM(raw, i + 1);
        if (!PyBytes_Check(value)) {
            PyErr_SetString(PyExc_TypeError, "field values must be bytes");
            goto fail;
        }
        key = PyDict_GetItemWithError(keys, name);               /* borrowed */
        if (key != NULL)
            Py_INCREF(key);
        else if (PyErr_Occurred() || (key = PyObject_CallOneArg(environKey, name)) == NULL)
            goto fail;
        if (key == Py_None) {
            Py_CLEAR(key);
            continue;
        }
        int isWatched = PySequence_Contains(watched, key);
        if (isWatched < 0)
            goto fail;
        if (isWatched) {
            PyObject *pair = PyTuple_Pack(2, key, value);
            int failed = pair == NULL || PyList_Append(seen, pair) < 0;
            Py_XDECREF(pair);
            if (failed)
                goto fail;
        }
        const char *v = PyBytes_AS_STRING(value);
        Py_ssize_t n = PyBytes_GET_SIZE(value);
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        text = PyUnicode_DecodeLatin1(v, n, NULL);
        if (text == NULL)
            goto fail;
        PyObject *before = PyDict_GetItemWithError(fields, key);  /* borrowed */
        if (before == NULL && PyErr_Occurred())
            goto fail;
        if (before != NULL) {
            PyObject *joined = PyUnicode_FromFormat("%U,%U", before, text);
            if (joined == NULL)
                goto fail;
            Py_SETREF(text, joined);
        }
        if (PyDict_SetItem(fields, key, text) < 0)
            goto fail;
        Py_CLEAR(text);
        Py_CLEAR(key);
    }
    return Py_BuildValue("(NN)", fields, seen);
fail:
    Py_XDECREF(key);
    Py_XDECREF(text);
    Py_XDECREF(fields);
    Py_XDECREF(seen);
    return NULL;
}

static PyMethodDef methods[] = {
    {"splitRecords", splitRecords, METH_O,
     "splitRecords(data) -> (records, position): the whole version-1 records at the start."},
    {"splitParams", splitParams, METH_VARARGS,
     "splitParams(data, maxPairs) -> dict of str, or None when data is not well formed."},
    {"headersValid", headersValid, METH_O,
     "headersValid(headers) -> True when wsgi.checkHeaders accepts them, else False."},
    {"fieldsOf", fieldsOf, METH_VARARGS,
     "fieldsOf(raw, keys, environKey, watched) -> (fields, watchedFields): see http_parse."},
    {"statusValid", statusValid, METH_O,
     "statusValid(status) -> True when wsgi.checkStatus accepts it, else False."},
    {"httpHead", httpHead, METH_VARARGS,
     "httpHead(status, headers, body, close) -> (head, declared), or None: see http_server."},
    {"headLines", headLines, METH_VARARGS,
     "headLines(headers, dropContentLength) -> (bytes, declared), or None: see wsgi.headLines."},
    {"lastOutput", lastOutput, METH_VARARGS,
     "lastOutput(requestId, data, appStatus) -> fcgi_protocol.encodeLastOutput's bytes, or None."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_speedups",
    "Per-record, per-parameter and per-header loops of the gateways, compiled.", -1, methods
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (PyType_Ready(&FieldLinesType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&FieldLinesType);
    if (PyModule_AddObject(m, "FieldLines", (PyObject *)&FieldLinesType) < 0) {
        Py_DECREF(&FieldLinesType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
