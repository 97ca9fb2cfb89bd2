"""``/metrics``: a Snapshot in Prometheus text format 0.0.4, or OpenMetrics 1.0.

OpenMetrics is chosen when the client's ``Accept`` names
``application/openmetrics-text`` (Prometheus itself asks for it first).  The
two differ in a few places: an OpenMetrics counter's family is named without
``_total``, ``peak_manager`` is of type ``info``, and the text ends with
``# EOF``.  Histogram bounds are written as floats (``1.0``) in both, as
OpenMetrics requires.
"""

import math

from peak_lite.running.procman.scoreboard import BUCKETS, CODE_CLASSES

__all__ = ['render', 'wantsOpenMetrics', 'TEXT_TYPE', 'OPENMETRICS_TYPE', 'EXIT_REASONS',
           'WORKER_STATES']

TEXT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
OPENMETRICS_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8'
EXIT_REASONS = ('crash', 'max_requests', 'idle', 'timeout', 'memory', 'reload', 'stop')
WORKER_STATES = ('starting', 'idle', 'busy', 'stopping', 'standby')
RELOAD_RESULTS = ('accepted', 'refused')


def wantsOpenMetrics(accept):
    return 'application/openmetrics-text' in (accept or '')


def _escape(value):
    return str(value).replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def _labels(pairs):
    if not pairs:
        return ''
    return '{' + ','.join(f'{name}="{_escape(value)}"' for name, value in pairs) + '}'


def _number(value):
    if isinstance(value, float):
        if math.isnan(value):
            return 'NaN'
        if math.isinf(value):
            return '+Inf' if value > 0 else '-Inf'
        return repr(value)
    return str(value)


class _Writer:
    def __init__(self, openMetrics):
        self.om = openMetrics
        self.lines = []

    def family(self, name, kind, doc):
        if self.om and kind == 'counter':
            name = name[:-len('_total')]
        if self.om and kind == 'info':
            name = name[:-len('_info')]
        elif kind == 'info':
            kind = 'gauge'
        self.lines.append(f'# HELP {name} {doc}')
        self.lines.append(f'# TYPE {name} {kind}')

    def sample(self, name, value, labels=()):
        self.lines.append(f'{name}{_labels(labels)} {_number(value)}')

    def text(self):
        if self.om:
            self.lines.append('# EOF')
        return ('\n'.join(self.lines) + '\n').encode('utf-8')


def render(snap, openMetrics=False):
    """(content type, body bytes) for ``snap`` (see StatusService.snapshot)."""
    w = _Writer(openMetrics)
    w.family('peak_workers', 'gauge', 'Children of the pool by state.')
    for state in WORKER_STATES:
        w.sample('peak_workers', snap['workers'].get(state, 0), [('state', state)])
    w.family('peak_requests_total', 'counter', 'Requests served by the children.')
    w.sample('peak_requests_total', snap['requests'])
    _histogram(w, snap)
    w.family('peak_responses_total', 'counter', 'Responses by status class.')
    for name, count in zip(CODE_CLASSES, snap['codes']):
        w.sample('peak_responses_total', count, [('code', name)])
    w.family('peak_listen_queue_length', 'gauge',
             "Connections waiting in the kernel's accept queue of each listener.")
    for name, length, _ in snap['queues']:
        if length is not None:
            w.sample('peak_listen_queue_length', length, [('listen', name)])
    w.family('peak_listen_queue_max', 'gauge', "The accept queue's limit (backlog).")
    for name, _, limit in snap['queues']:
        if limit is not None:
            w.sample('peak_listen_queue_max', limit, [('listen', name)])
    w.family('peak_worker_spawns_total', 'counter', 'Children started.')
    w.sample('peak_worker_spawns_total', snap['spawns'])
    w.family('peak_worker_exits_total', 'counter', 'Children that exited, by reason.')
    for reason in EXIT_REASONS:
        w.sample('peak_worker_exits_total', snap['exits'].get(reason, 0), [('reason', reason)])
    w.family('peak_worker_memory_bytes', 'gauge',
             'Memory of each child: uss (private), pss (proportional), rss (resident).')
    for worker, memory in snap['memory']:
        for kind in ('uss', 'pss', 'rss'):
            w.sample('peak_worker_memory_bytes', memory[kind],
                     [('worker', worker), ('kind', kind)])
    w.family('peak_reloads_total', 'counter', 'Reloads (SIGHUP) by the check\'s result.')
    for result in RELOAD_RESULTS:
        w.sample('peak_reloads_total', snap['reloads'].get(result, 0), [('result', result)])
    w.family('peak_manager_info', 'info', 'The manager: version and config file.')
    w.sample('peak_manager_info', 1, [('version', snap['version']),
                                      ('config', snap['config'])])
    return (OPENMETRICS_TYPE if openMetrics else TEXT_TYPE), w.text()


def _histogram(w, snap):
    name = 'peak_request_duration_seconds'
    w.family(name, 'histogram', 'Time from the start of a request to the end of its response.')
    running = 0
    for bound, count in zip(BUCKETS + (math.inf,), snap['buckets']):
        running += count
        w.sample(f'{name}_bucket', running, [('le', _number(float(bound)))])
    # _count is the +Inf bucket by construction: both are the buckets' sum.
    w.sample(f'{name}_sum', float(snap['durationSum']))
    w.sample(f'{name}_count', running)
