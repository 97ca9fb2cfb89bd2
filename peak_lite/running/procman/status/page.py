"""``/``: the status page for people, one self-contained HTML document.

No script and no external asset: the page reloads itself every REFRESH
seconds (``<meta http-equiv="refresh">``), and the latency chart is inline
SVG drawn from the histogram's buckets.
"""

import html
import time

from peak_lite.running.procman.scoreboard import BUCKETS

__all__ = ['render', 'REFRESH']

REFRESH = 2
_STYLE = """
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}
.busy{color:#b35900;font-weight:bold}.idle{color:#2a7a2a}
svg text{font:11px system-ui,sans-serif}
"""


def _mb(value):
    return '-' if value is None else f'{value / 1048576:.1f}'


def _esc(value):
    return html.escape(str(value), quote=True)


def render(doc, snap):
    """The page's bytes, from the ``/status`` document and a metrics snapshot."""
    memory = {worker: found for worker, found in snap['memory']}
    rows = []
    for c in doc['children']:
        mem = memory.get(str(c['worker']), {})
        age = '-' if c['requestAge'] is None else f"{c['requestAge']:.2f}s"
        rows.append(
            f"<tr><td class=pid>{c['pid']}</td><td>{c['worker']}</td>"
            f"<td class='l {_esc(c['state'])}'>{_esc(c['state'])}</td><td>{c['requests']}</td>"
            f"<td class=l>{_esc(c['request'] or '-')}</td><td>{age}</td>"
            f"<td>{_mb(mem.get('uss'))}</td><td>{_mb(mem.get('pss'))}</td>"
            f"<td>{_mb(mem.get('rss'))}</td></tr>")
    workers = snap['workers']
    codes = ', '.join(f'{n} {k}' for k, n in zip(('2xx', '3xx', '4xx', '5xx'), snap['codes']))
    mean = snap['durationSum'] / snap['requests'] if snap['requests'] else 0.0
    exits = ', '.join(f'{n} {reason}' for reason, n in snap['exits'].items() if n) or 'none'
    queues = ''.join(f"<tr><td class=l>{_esc(name)}</td><td>{'-' if n is None else n}</td>"
                     f"<td>{'-' if m is None else m}</td></tr>" for name, n, m in snap['queues'])
    text = f"""<!DOCTYPE html>
<html lang=en><head><meta charset=utf-8>
<meta http-equiv=refresh content={REFRESH}>
<title>peak procman: {_esc(doc['config'])}</title><style>{_STYLE}</style></head>
<body>
<h1>peak procman</h1>
<p>manager {doc['manager']} &middot; {_esc(doc['config'])} &middot; version
{_esc(snap['version'])} &middot; {time.strftime('%Y-%m-%d %H:%M:%S')}</p>
<h2>Workers</h2>
<table id=workers><tr><th>pid</th><th>worker</th><th class=l>state</th><th>requests</th>
<th class=l>current request</th><th>age</th><th>USS MB</th><th>PSS MB</th><th>RSS MB</th></tr>
{''.join(rows)}</table>
<h2>Totals</h2>
<table id=totals>
<tr><th class=l>children</th><td>{doc['totals']['children']} ({workers.get('busy', 0)} busy,
{workers.get('idle', 0)} idle, {workers.get('starting', 0)} starting,
{workers.get('stopping', 0)} stopping, {workers.get('standby', 0)} standby)</td></tr>
<tr><th class=l>requests</th><td>{snap['requests']} (mean {mean * 1000:.1f} ms)</td></tr>
<tr><th class=l>responses</th><td>{codes}</td></tr>
<tr><th class=l>children started</th><td>{snap['spawns']}</td></tr>
<tr><th class=l>children exited</th><td>{_esc(exits)}</td></tr>
</table>
<h2>Listeners</h2>
<table><tr><th class=l>listen</th><th>accept queue</th><th>limit</th></tr>{queues}</table>
<h2>Latency</h2>
{_chart(snap['buckets'])}
</body></html>
"""
    return text.encode('utf-8')


def _chart(buckets):
    """Bars: requests per duration bucket, as inline SVG."""
    labels = [f'≤{b * 1000:g}ms' if b < 1 else f'≤{b:g}s' for b in BUCKETS] + ['>10s']
    top = max(buckets) or 1
    width, height, bar = 60 * len(buckets), 180, 44
    parts = [f'<svg id=latency xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height + 40}" role="img" aria-label="requests by duration">']
    for i, (label, count) in enumerate(zip(labels, buckets)):
        h = round(height * count / top)
        x = i * 60 + 8
        parts.append(f'<rect x="{x}" y="{height - h + 15}" width="{bar}" height="{h}" '
                     f'fill="#4a7bd0"><title>{count} requests {label}</title></rect>')
        parts.append(f'<text x="{x + bar / 2}" y="{height - h + 11}" '
                     f'text-anchor="middle">{count}</text>')
        parts.append(f'<text x="{x + bar / 2}" y="{height + 32}" '
                     f'text-anchor="middle">{_esc(label)}</text>')
    parts.append('</svg>')
    return ''.join(parts)
