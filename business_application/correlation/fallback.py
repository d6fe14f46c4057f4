"""Pure-Python twin of the compiled core: the same ``Graph`` methods, the same answers.

Used when ``business_application._core`` is not built. Every rule of docs/engine-api.md is
implemented here exactly as in ``core_rs/engine``: same traversal order, same tie-breaks, the same
floating-point operations in the same order, and the same ``GraphError`` messages. The property
tests in tests/property compare the two on random maps.

The map is kept as one adjacency list per node and direction, each a list of
``(neighbour, kind, group)`` tuples sorted by that tuple; walks use a deque and dicts holding only
the nodes they touch, so a query costs what it walks, not the map size.
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from .errors import GraphError
from .kinds import APPLICATION, CARRIES, CLUSTER_MEMBER, HOSTS, NO_GROUP, REDUNDANT, SERVICE

__all__ = ('Graph',)

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1
_U32_MAX = 2**32 - 1
# The compiled core packs a node id and an edge kind into one 32-bit word: 29 bits for the id.
MAX_NODES = 2**29
_NODE_KINDS = 5
_EDGE_KINDS = 7
# Edge kinds as sets, for the walks' inner loops.
_PURE = frozenset({0, REDUNDANT})  # DEPENDS, REDUNDANT
_TERMINAL = frozenset({REDUNDANT, CLUSTER_MEMBER})
_HARD = frozenset({0, HOSTS, 5, 6})  # DEPENDS, HOSTS, CABLE, SUPPORTS
_GROUPED = frozenset({REDUNDANT, CLUSTER_MEMBER, CARRIES})

# Walk modes, as in core_rs/engine/src/walk.rs.
_MIXED, _PURE_SCOPE, _REGION = 'mixed', 'pure', 'region'

Adjacency = list[list[tuple[int, int, int]]]
MatchTuple = tuple[int, float, str, float, float, float, int, list[int], str]
# The event's footprint as a set and its four walks (mixed down, mixed up, pure down, pure up).
EventWalks = tuple[set[int], tuple['_Walk', '_Walk', '_Walk', '_Walk']]


def _int_list(values: Iterable[Any], name: str) -> list[int]:
    """The values as ints, naming the first one that is not a 64-bit integer."""
    try:
        items = list(values)
    except TypeError:
        raise GraphError(f'{name} is not a sequence of integers') from None
    if all(type(v) is int for v in items) and (not items or _I64_MIN <= min(items) and max(items) <= _I64_MAX):
        return items  # the common case, checked without a Python-level loop per element
    result = []
    for i, value in enumerate(items):
        try:
            number = operator.index(value)
        except TypeError:
            number = None
        if number is None or not _I64_MIN <= number <= _I64_MAX:
            raise GraphError(f'{name}[{i}] is not a 64-bit integer')
        result.append(number)
    return result


def _i64(value: Any) -> int:
    """``operator.index(value)`` limited to 64 bits, as the compiled core converts an int argument."""
    number = operator.index(value)
    if not _I64_MIN <= number <= _I64_MAX:
        raise OverflowError(f'{number} does not fit in 64 bits')
    return number


def _real(value: Any) -> float:
    """``float(value)`` for numbers only, as the compiled core converts them (no strings)."""
    if isinstance(value, str | bytes | bytearray):
        raise TypeError(f'must be real number, not {type(value).__name__}')
    return float(value)


def _check_severity(value: int, context: str) -> None:
    if not 0 <= value <= 3:
        raise GraphError(f'{context}severity {value} is outside 0..3')


def _limits(depth: int, work_cap: int) -> None:
    if depth < 0:
        raise GraphError(f'depth must be >= 0, got {depth}')
    if work_cap < 0:
        raise GraphError(f'work_cap must be >= 0, got {work_cap}')


class _Walk:
    """One walk's result: ``seen`` maps each recorded node to ``(distance, parent)``."""

    __slots__ = ('capped', 'discovered', 'seen', 'via')

    def __init__(self) -> None:
        self.seen: dict[int, tuple[int, int | None]] = {}
        # Nodes first recorded through a terminal edge and expanded later from another parent.
        self.via: dict[int, int] = {}
        self.discovered = 0
        self.capped = False

    def path_to(self, node: int) -> list[int]:
        """Nodes from a source to ``node``, following the edges the walk expanded."""
        path = [node]
        parent = self.seen[node][1]
        while parent is not None:
            path.append(parent)
            parent = self.via[parent] if parent in self.via else self.seen[parent][1]
        path.reverse()
        return path


class Graph:
    """The dependency map, built once and queried many times (see docs/engine-api.md)."""

    __slots__ = ('_edge_count', '_in', '_kinds', '_out', '_skipped_self_loops')

    def __init__(
        self, kinds: Iterable[int], src: Iterable[int], dst: Iterable[int], kind: Iterable[int], group: Iterable[int]
    ) -> None:
        kinds = _int_list(kinds, 'kinds')
        src = _int_list(src, 'src')
        dst = _int_list(dst, 'dst')
        kind = _int_list(kind, 'kind')
        group = _int_list(group, 'group')
        if not len(src) == len(dst) == len(kind) == len(group):
            raise GraphError(
                f'edge sequences differ in length: src {len(src)}, dst {len(dst)}, kind {len(kind)}, group {len(group)}'
            )
        n = len(kinds)
        if n > MAX_NODES:
            raise GraphError(f'the map has {n} nodes; at most {MAX_NODES} are supported')
        for node, node_kind in enumerate(kinds):
            if not 0 <= node_kind < _NODE_KINDS:
                raise GraphError(f'node {node} has unknown kind {node_kind}')

        edges = set()
        skipped = 0
        for i, (s, d, k) in enumerate(zip(src, dst, kind, strict=True)):
            if not 0 <= s < n:
                raise GraphError(f"edge {i}: src {s} is outside the map's {n} nodes")
            if not 0 <= d < n:
                raise GraphError(f"edge {i}: dst {d} is outside the map's {n} nodes")
            if not 0 <= k < _EDGE_KINDS:
                raise GraphError(f'edge {i} has unknown kind {k}')
            if s == d:
                skipped += 1
                continue
            edges.add((s, d, k, group[i] if k == REDUNDANT else NO_GROUP))
        if len(edges) > _U32_MAX:
            raise GraphError(f'the map has {len(edges)} distinct edges; at most {_U32_MAX} are supported')

        # Sorted by (src, dst, kind, group): each out-list comes out sorted by (dst, kind, group)
        # and each in-list by (src, kind, group).
        out: Adjacency = [[] for _ in range(n)]
        inc: Adjacency = [[] for _ in range(n)]
        for s, d, k, g in sorted(edges):
            out[s].append((d, k, g))
            inc[d].append((s, k, g))
        self._kinds = kinds
        self._out = out
        self._in = inc
        self._edge_count = len(edges)
        self._skipped_self_loops = skipped

    def __repr__(self) -> str:
        return f'<Graph nodes={self.node_count} edges={self.edge_count}>'

    @property
    def node_count(self) -> int:
        return len(self._kinds)

    @property
    def edge_count(self) -> int:
        return self._edge_count

    @property
    def skipped_self_loops(self) -> int:
        return self._skipped_self_loops

    def footprint(self, x: int) -> list[int]:
        """``[x]`` followed by the services ``x`` carries, ascending."""
        return self._footprint(self._node(_i64(x), ''))

    def maintenance_scope(self, x: int) -> list[int]:
        """``[x]`` followed by its carried services and the nodes hosting it, ascending, no repeats."""
        x = self._node(_i64(x), '')
        rest = set(self._footprint(x)[1:])
        rest.update(u for u, k, _ in self._in[x] if k == HOSTS)
        return [x, *sorted(rest)]

    def decide(
        self,
        node: int,
        severity: int,
        time: float,
        candidates: Iterable[Sequence[Any]],
        depth: int,
        work_cap: int,
        threshold: float,
        window_s: float,
        w_service: float,
        w_dependency: float,
        w_infrastructure: float,
    ) -> tuple[list[MatchTuple], bool, int]:
        """Scores an event against each candidate incident; see docs/engine-api.md, "decide"."""
        # Converted in signature order, as the compiled core parses its arguments.
        node, severity, time = _i64(node), _i64(severity), _real(time)
        depth, work_cap, threshold, window_s = _i64(depth), _i64(work_cap), _real(threshold), _real(window_s)
        weights = (_real(w_service), _real(w_dependency), _real(w_infrastructure))
        parsed = _candidates(candidates)
        node = self._node(node, '')
        _check_severity(severity, '')
        members = self._candidate_members(parsed)
        _limits(depth, work_cap)

        walks = self._event_walks(node, depth, work_cap)
        matches = []
        for index, ((candidate_severity, last_activity, _), member_ids) in enumerate(zip(parsed, members, strict=True)):
            mapped = ((m, member) for m, member in enumerate(member_ids) if member is not None)
            found = self._score_candidate(
                walks, index, candidate_severity, last_activity, mapped, severity, time, threshold, window_s, weights
            )
            if found is not None:
                matches.append(found)
        return _finish(matches, walks)

    def reach(self, x: int, depth: int, work_cap: int) -> tuple[int, int, bool]:
        """The mixed down and up walks from ``footprint(x)``: nodes each discovered, and whether one was capped."""
        x, depth, work_cap = _i64(x), _i64(depth), _i64(work_cap)
        x = self._node(x, '')
        _limits(depth, work_cap)
        footprint = self._footprint(x)
        down = self._walk(footprint, True, _MIXED, depth, work_cap)
        up = self._walk(footprint, False, _MIXED, depth, work_cap)
        return down.discovered, up.discovered, down.capped or up.capped

    def rank_upstream(self, nodes: Iterable[int], depth: int, work_cap: int) -> list[int]:
        """For each entry, how many other entries' footprints its mixed down walk reaches."""
        depth, work_cap = _i64(depth), _i64(work_cap)
        ids = self._optional_nodes(_int_list(nodes, 'nodes'), 'nodes')
        _limits(depth, work_cap)
        footprints = [[] if x is None else self._footprint(x) for x in ids]

        counts = [0] * len(ids)
        for i, footprint in enumerate(footprints):
            if not footprint:
                continue
            seen = self._walk(footprint, True, _MIXED, depth, work_cap).seen
            counts[i] = sum(1 for j, other in enumerate(footprints) if j != i and any(n in seen for n in other))
        return counts

    def blast_radius(self, failing: Iterable[int], depth: int, work_cap: int) -> tuple[list[int], list[int], bool]:
        """The services and applications down or degraded when ``failing`` fail (``-1`` ignored)."""
        depth, work_cap = _i64(depth), _i64(work_cap)
        ids = [x for x in self._optional_nodes(_int_list(failing, 'failing'), 'failing') if x is not None]
        _limits(depth, work_cap)
        sources = [n for x in ids for n in self._footprint(x)]
        region = self._walk(sources, True, _REGION, depth, work_cap)
        in_region = region.seen

        down = set(ids)
        worklist = list(dict.fromkeys(ids))
        # Per touched node: {group key: members of the group not known to be down}.
        remaining: dict[int, dict[tuple[int, int], int]] = {}
        while worklist:
            u = worklist.pop()
            for v, k, g in self._out[u]:
                if v not in in_region or v in down:
                    continue
                if k in _HARD or (k in _GROUPED and self._count_down(remaining, v, _group_key(k, g))):
                    down.add(v)
                    worklist.append(v)

        kinds = self._kinds
        down_list = sorted(n for n in down if kinds[n] == SERVICE or kinds[n] == APPLICATION)
        degraded = sorted(n for n in remaining if n not in down and (kinds[n] == SERVICE or kinds[n] == APPLICATION))
        return down_list, degraded, region.capped

    # Helpers.

    def _node(self, x: int, context: str) -> int:
        if not 0 <= x < len(self._kinds):
            raise GraphError(f"{context}node {x} is outside the map's {len(self._kinds)} nodes")
        return x

    def _optional_nodes(self, nodes: list[int], name: str) -> list[int | None]:
        return [None if x == -1 else self._node(x, f'{name}[{i}]: ') for i, x in enumerate(nodes)]

    def _footprint(self, x: int) -> list[int]:
        kinds = self._kinds
        return [x, *(v for v, k, _ in self._out[x] if k == CARRIES and kinds[v] == SERVICE)]

    def _candidate_members(self, parsed: list[tuple[int, float | None, list[int]]]) -> list[list[int | None]]:
        result = []
        for c, (candidate_severity, _, members) in enumerate(parsed):
            _check_severity(candidate_severity, f'candidate {c}: ')
            result.append(
                [None if x == -1 else self._node(x, f'candidate {c}, member {m}: ') for m, x in enumerate(members)]
            )
        return result

    def _event_walks(self, node: int, depth: int, work_cap: int) -> EventWalks:
        """The event's footprint (as a set) and its four walks: mixed down, mixed up, pure down, pure up."""
        footprint = self._footprint(node)
        walks = (
            self._walk(footprint, True, _MIXED, depth, work_cap),
            self._walk(footprint, False, _MIXED, depth, work_cap),
            self._walk(footprint, True, _PURE_SCOPE, depth, work_cap),
            self._walk(footprint, False, _PURE_SCOPE, depth, work_cap),
        )
        return set(footprint), walks

    def _score_candidate(
        self,
        event_walks: EventWalks,
        key: int,
        candidate_severity: int,
        last_activity: float | None,
        members: Iterable[tuple[int, int]],
        severity: int,
        time: float,
        threshold: float,
        window_s: float,
        weights: tuple[float, float, float],
    ) -> MatchTuple | None:
        """The best-linked of ``members`` (``(index, node)``, ascending index), scored; None below threshold."""
        event, walks = event_walks
        best = None
        for m, member in members:
            link = self._link_member(member, event, walks, weights)
            if link is not None and (
                best is None or link[1] > best[1][1] or (link[1] == best[1][1] and link[2] < best[1][2])
            ):
                best = (m, link)
        if best is None:
            return None
        member_index, (link_name, weight, _, anchor, direction, walk) = best
        decay = time_decay(time, last_activity, window_s)
        severity_factor = 1.0 - 0.1 * abs(severity - candidate_severity)
        score = (weight * decay) * severity_factor
        if not score >= threshold:
            return None
        path = [anchor] if walk is None else walk.path_to(anchor)
        return key, score, link_name, weight, decay, severity_factor, member_index, path, direction

    def _walk(self, sources: list[int], down: bool, scope: str, depth: int, work_cap: int) -> _Walk:
        """One bounded breadth-first walk; see core_rs/engine/src/walk.rs for the rules."""
        walk = _Walk()
        seen = walk.seen
        queue: deque[tuple[int, int]] = deque()
        pure = scope == _PURE_SCOPE
        for s in sources:
            if pure and self._kinds[s] != SERVICE:
                continue
            if s not in seen:
                seen[s] = (0, None)
                queue.append((s, 0))

        adjacency = self._out if down else self._in
        terminal_kinds = frozenset() if scope == _REGION else _TERMINAL
        unexpanded: set[int] = set()  # recorded through a terminal edge of a down walk, not yet expanded
        while queue:
            u, dist = queue.popleft()
            if dist >= depth:
                continue
            for v, k, _ in adjacency[u]:
                if pure and k not in _PURE:
                    continue
                terminal = k in terminal_kinds
                if not down and terminal and dist != 0:
                    continue
                if v not in seen:
                    if walk.discovered == work_cap:
                        walk.capped = True
                        return walk
                    walk.discovered += 1
                    seen[v] = (dist + 1, u)
                    if terminal and down:
                        unexpanded.add(v)
                    else:
                        queue.append((v, dist + 1))
                elif not terminal and v in unexpanded:
                    unexpanded.discard(v)
                    walk.via[v] = u
                    queue.append((v, dist + 1))
        return walk

    def _link_member(
        self,
        member: int,
        event: set[int],
        walks: tuple[_Walk, _Walk, _Walk, _Walk],
        weights: tuple[float, float, float],
    ) -> tuple[str, float, int, int, str, _Walk | None] | None:
        """``(link, weight, distance, anchor, direction, walk)`` for one member, or None."""
        footprint = self._footprint(member)
        for n in footprint:
            if n in event:
                return 'service', weights[0], 0, n, 'same', None
        for link, (down_walk, up_walk), weight in (
            ('dependency', walks[2:], weights[1]),
            ('infrastructure', walks[:2], weights[2]),
        ):
            best = None
            for position, n in enumerate(footprint):
                for up, walk in ((False, down_walk), (True, up_walk)):
                    visit = walk.seen.get(n)
                    if visit is not None:
                        key = (visit[0], up, position)
                        if best is None or key < best:
                            best = key
            if best is not None:
                dist, up, position = best
                walk = up_walk if up else down_walk
                return link, weight, dist, footprint[position], 'upstream' if up else 'downstream', walk
        return None

    def _count_down(self, remaining: dict[int, dict[tuple[int, int], int]], node: int, key: tuple[int, int]) -> bool:
        """Counts one more down member of ``node``'s group ``key``; True when none of it is left up."""
        groups = remaining.setdefault(node, {})
        if key not in groups:
            groups[key] = sum(1 for _, k, g in self._in[node] if k in _GROUPED and _group_key(k, g) == key)
        groups[key] -= 1
        return groups[key] == 0


def _finish(matches: list[MatchTuple], event_walks: EventWalks) -> tuple[list[MatchTuple], bool, int]:
    """Matches (given in ascending candidate order) best first, with the walks' capped flag and count."""
    walks = event_walks[1]
    matches.sort(key=lambda match: (-match[1], match[0]))
    return matches, any(w.capped for w in walks), sum(w.discovered for w in walks)


def _group_key(kind: int, group: int) -> tuple[int, int]:
    """Which in-edges form one group: one REDUNDANT group id, all CLUSTER_MEMBER, all CARRIES."""
    return (kind, group if kind == REDUNDANT else NO_GROUP)


def _candidates(candidates: Iterable[Sequence[Any]]) -> list[tuple[int, float | None, list[int]]]:
    """The ``(severity, last_activity, members)`` triples, checked as the compiled core checks them."""
    try:
        items = iter(candidates)
    except TypeError:
        raise GraphError('candidates is not a sequence') from None
    parsed = []
    for i, item in enumerate(items):
        if not isinstance(item, tuple | list) or len(item) != 3:
            raise GraphError(f'candidates[{i}] is not a (severity, last_activity, members) triple')
        severity, last_activity, members = item
        try:
            severity = operator.index(severity)
        except TypeError:
            severity = None
        if severity is None or not _I64_MIN <= severity <= _I64_MAX:
            raise GraphError(f'candidates[{i}] severity is not a 64-bit integer')
        if last_activity is not None:
            try:
                last_activity = _real(last_activity)
            except (TypeError, ValueError, OverflowError):
                raise GraphError(f'candidates[{i}] last_activity is not a number or None') from None
        parsed.append((severity, last_activity, _int_list(members, f'candidates[{i}] members')))
    return parsed


def time_decay(time: float, last_activity: float | None, window_s: float) -> float:
    """``1 - 0.5 * min(1, d / window_s)``, written with the compiled core's NaN-safe comparisons."""
    d = 0.0 if last_activity is None else time - last_activity
    d = d if d > 0.0 else 0.0
    if window_s > 0.0:
        ratio = d / window_s
        ratio = ratio if ratio < 1.0 else 1.0
        return 1.0 - 0.5 * ratio
    return 1.0 if d == 0.0 else 0.5
