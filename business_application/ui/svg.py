"""Server-side SVG pictures of a piece of the dependency map: a small layered layout, no script, no external asset.

Nodes sit in columns (layers, left to right in the direction the failure spreads) and each column shows at most
``per_layer`` nodes, the most important first; the rest of a column becomes one summary box such as
"+ 412 more services", so the picture of a core-switch incident stays readable. Every piece of text is escaped
here, whatever the names contain, and links are only the URLs the caller built.
"""

import dataclasses
from collections import Counter, defaultdict

from django.utils.html import escape
from django.utils.safestring import mark_safe

__all__ = ('STATES', 'Edge', 'Node', 'Picture', 'render')

#: How each state is drawn: fill, stroke and the word the legend uses.
STATES = {
    'failing': ('#f6b8b8', '#a61b1b', 'failing (alerting)'),
    'down': ('#fde2e1', '#d63939', 'down'),
    'degraded': ('#fff1db', '#f59f00', 'degraded'),
    'focus': ('#e3eefc', '#206bc4', 'this service'),
    'path': ('#f4f6fa', '#9aa5b5', 'on the path'),
    'normal': ('#ffffff', '#9aa5b5', 'not affected'),
}
#: The order a column lists its nodes in: what hurts most first.
STATE_RANK = {state: rank for rank, state in enumerate(('focus', 'failing', 'down', 'degraded', 'path', 'normal'))}
#: Plural nouns for the summary boxes, by node kind.
PLURALS = {
    'service': 'services',
    'app': 'applications',
    'device': 'devices',
    'vm': 'virtual machines',
    'cluster': 'clusters',
}

BOX_W, BOX_H = 160, 34
COL_GAP, ROW_GAP = 48, 10
MARGIN, LEGEND_H = 12, 28
MAX_LABEL = 22


@dataclasses.dataclass
class Node:
    """One box: ``key`` identifies it in edges, ``kind`` is service/app/device/vm/cluster."""

    key: object
    name: str
    kind: str
    layer: int
    state: str = 'normal'
    url: str | None = None
    weight: int = 0  # a tie-breaker within a state: higher is listed first


@dataclasses.dataclass(frozen=True)
class Edge:
    src: object
    dst: object


@dataclasses.dataclass
class Picture:
    """What ``render`` drew: the markup, and how many nodes it summarised rather than drew."""

    svg: str
    shown: int
    hidden: int
    hidden_by_kind: dict


def _label(text, limit=MAX_LABEL):
    return text if len(text) <= limit else text[: limit - 1] + '…'


def _columns(nodes, per_layer):
    """Nodes by layer, each column cut to ``per_layer`` boxes; returns the shown columns and the hidden nodes."""
    layers = defaultdict(list)
    for node in nodes:
        layers[node.layer].append(node)
    shown, hidden = {}, {}
    for layer, members in sorted(layers.items()):
        members.sort(key=lambda n: (STATE_RANK.get(n.state, 9), -n.weight, n.kind, n.name.lower(), str(n.key)))
        limit = per_layer if len(members) <= per_layer else per_layer - 1  # the last row holds the summary
        shown[layer] = members[:limit]
        hidden[layer] = members[limit:]
    return shown, hidden


def _summary_text(hidden):
    counts = Counter(node.kind for node in hidden)
    if len(counts) == 1:
        kind, count = next(iter(counts.items()))
        return f'+ {count} more {PLURALS.get(kind, kind + "s")}'
    return f'+ {len(hidden)} more'


def _box(x, y, fill, stroke, text, tooltip, url=None, dashed=False, css='', width=1.5):
    dash = ' stroke-dasharray="4 3"' if dashed else ''
    parts = [
        f'<g class="ba-node{css}"><title>{escape(tooltip)}</title>',
        f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="5" fill="{fill}" stroke="{stroke}"'
        f' stroke-width="{width}"{dash}/>',
        f'<text x="{x + 8}" y="{y + BOX_H / 2 + 4:.0f}" font-size="12" fill="#1d273b">{escape(text)}</text>',
        '</g>',
    ]
    markup = ''.join(parts)
    if url:
        markup = f'<a href="{escape(url)}">{markup}</a>'
    return markup


def render(nodes, edges, *, title, per_layer=12, element_id='ba-map', layer_titles=None):
    """Draw ``nodes`` (a list of ``Node``) and ``edges`` (``Edge`` between node keys) as inline SVG.

    Edges to a node that did not fit its column end at that column's summary box. ``layer_titles`` maps a layer
    to a heading shown above its column.
    """
    shown, hidden = _columns(nodes, per_layer)
    position = {}
    summary_box = {}
    layers = sorted(shown)
    column_x = {layer: MARGIN + i * (BOX_W + COL_GAP) for i, layer in enumerate(layers)}
    top = MARGIN + (18 if layer_titles else 0)
    rows = 0
    for layer in layers:
        x = column_x[layer]
        for row, node in enumerate(shown[layer]):
            position[node.key] = (x, top + row * (BOX_H + ROW_GAP))
        count = len(shown[layer])
        if hidden[layer]:
            summary_box[layer] = (x, top + count * (BOX_H + ROW_GAP))
            count += 1
            for node in hidden[layer]:
                position[node.key] = summary_box[layer]
        rows = max(rows, count)

    width = MARGIN * 2 + max(len(layers), 1) * BOX_W + max(len(layers) - 1, 0) * COL_GAP
    height = top + max(rows, 1) * (BOX_H + ROW_GAP) + LEGEND_H

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(element_id)}" class="ba-map" role="img"'
        f' width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif">',
        f'<title>{escape(title)}</title>',
        '<defs><marker id="{0}-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7"'
        ' orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#9aa5b5"/></marker></defs>'.format(
            escape(element_id)
        ),
    ]
    for layer, heading in (layer_titles or {}).items():
        if layer in column_x:
            out.append(
                f'<text x="{column_x[layer]}" y="{MARGIN + 8}" font-size="11" fill="#667382">{escape(heading)}</text>'
            )

    drawn = set()
    for edge in edges:
        if edge.src not in position or edge.dst not in position:
            continue
        (x1, y1), (x2, y2) = position[edge.src], position[edge.dst]
        if (x1, y1, x2, y2) in drawn or x1 == x2:
            continue
        drawn.add((x1, y1, x2, y2))
        if x1 > x2:
            (x1, y1), (x2, y2) = (x2, y2), (x1, y1)
        sx, sy, ex, ey = x1 + BOX_W, y1 + BOX_H / 2, x2, y2 + BOX_H / 2
        mid = (sx + ex) / 2
        out.append(
            f'<path d="M {sx} {sy:.0f} C {mid:.0f} {sy:.0f}, {mid:.0f} {ey:.0f}, {ex} {ey:.0f}" fill="none"'
            f' stroke="#9aa5b5" stroke-width="1.2" marker-end="url(#{escape(element_id)}-arrow)"/>'
        )

    for layer in layers:
        for node in shown[layer]:
            fill, stroke, word = STATES.get(node.state, STATES['normal'])
            x, y = position[node.key]
            tooltip = f'{node.kind}: {node.name} ({word})'
            width = 2.5 if node.state in ('failing', 'focus') else 1.5
            out.append(
                _box(x, y, fill, stroke, _label(node.name), tooltip, node.url, css=f' ba-{node.state}', width=width)
            )
        if hidden[layer]:
            x, y = summary_box[layer]
            text = _summary_text(hidden[layer])
            out.append(_box(x, y, '#f4f6fa', '#667382', text, text, dashed=True, css=' ba-summary'))

    used = sorted({node.state for node in nodes}, key=lambda s: STATE_RANK.get(s, 9))
    x = MARGIN
    for state in used:
        fill, stroke, word = STATES.get(state, STATES['normal'])
        out.append(
            f'<rect x="{x}" y="{height - LEGEND_H + 8}" width="12" height="12" fill="{fill}" stroke="{stroke}"/>'
            f'<text x="{x + 16}" y="{height - LEGEND_H + 18}" font-size="11" fill="#1d273b">{escape(word)}</text>'
        )
        x += 30 + 7 * len(word)
    out.append('</svg>')

    hidden_nodes = [node for layer in layers for node in hidden[layer]]
    return Picture(
        svg=mark_safe(''.join(out)),  # noqa: S308 - every piece of text above went through escape()
        shown=sum(len(column) for column in shown.values()),
        hidden=len(hidden_nodes),
        hidden_by_kind=dict(Counter(node.kind for node in hidden_nodes)),
    )
