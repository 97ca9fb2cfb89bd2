"""Medians, ratios and the markdown table of a benchmark run.

``rounds[table][row]`` is the list of per-round figure dicts.  Each cell of
the table is the median over rounds; each peak_lite row also gets the ratio of
its headline figure to every peer row of the same table (ratio of medians).
"""

import math
import statistics


def median(values):
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(values) if values else None


def medians(rounds):
    """{table: {row: {metric: median}}}."""
    out = {}
    for table, rows in rounds.items():
        out[table] = {}
        for row, samples in rows.items():
            keys = sorted({k for s in samples for k in s})
            out[table][row] = {k: median([s.get(k) for s in samples]) for k in keys}
            out[table][row]['rounds'] = len(samples)
    return out


def isPeak(row):
    return row.startswith('peak_lite')


def ratios(spec, rows):
    """{peak row: {peer row: peak / peer}} for the table's headline figure."""
    key = spec['ratio'][0]
    out = {}
    for row, figures in rows.items():
        if not isPeak(row):
            continue
        out[row] = {}
        for peer, theirs in rows.items():
            mine, other = figures.get(key), theirs.get(key)
            if isPeak(peer) or mine is None or not other:
                continue
            out[row][peer] = mine / other
    return out


def _cell(fmt, value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '—'
    return fmt.format(value)


def markdown(specs, table_medians, rounds_done):
    """The markdown tables, in the order of ``specs``."""
    parts = []
    for table, spec in specs.items():
        rows = table_medians.get(table)
        if not rows:
            continue
        peers = [r for r in rows if not isPeak(r)]
        key, label, higher_better = spec['ratio']
        better = 'higher is better' if higher_better else 'lower is better'
        header = ['server'] + [m[1] for m in spec['metrics']] + [
            f'{label}: ÷ {p}' for p in peers]
        lines = [f"### {spec['title']}", '',
                 f"Median of {rounds_done.get(table, '?')} rounds; ratios are peak_lite's "
                 f"{label} divided by the peer's ({better}).", '',
                 '| ' + ' | '.join(header) + ' |',
                 '|' + '---|' * len(header)]
        found = ratios(spec, rows)
        for row, figures in rows.items():
            cells = [row] + [_cell(fmt, figures.get(k)) for k, _, fmt in spec['metrics']]
            cells += [_cell('{:.2f}×', found.get(row, {}).get(p)) for p in peers]
            lines.append('| ' + ' | '.join(cells) + ' |')
        parts.append('\n'.join(lines))
    return '\n\n'.join(parts) + '\n'
