"""The snapshot's map components and edge removals are the same in the compiled core and in Python.

A random snapshot gets random dependencies, some of them dropped again and some of their nodes
deleted; after each step every node's component key (the decision lock) must equal a plain
breadth-first answer over the live edges, whichever backend upholds the snapshot, and both
backends must leave identical edge arrays.
"""

from collections import defaultdict, deque

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from business_application.correlation.kinds import DEVICE, SERVICE
from business_application.services.snapshot import SnapshotBuilder, canonical_key

COMPARE = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def histories(draw: st.DrawFn) -> tuple[int, list[tuple]]:
    n = draw(st.integers(1, 24))
    node = st.integers(0, n - 1)
    op = st.one_of(
        st.tuples(st.just('depend'), st.integers(0, 15), node, node),
        st.tuples(st.just('drop'), st.integers(0, 15)),
        st.tuples(st.just('delete'), st.lists(node, max_size=3)),
        st.tuples(st.just('ask'), node),
    )
    return n, draw(st.lists(op, max_size=30))


def expected_components(builder: SnapshotBuilder) -> list[int]:
    """Each node's least canonical key over the live (non-self-loop) edges, by breadth-first search."""
    count = len(builder.kinds)
    neighbours = defaultdict(list)
    for s, d in zip(builder.src, builder.dst, strict=True):
        if s != d:
            neighbours[s].append(d)
            neighbours[d].append(s)
    answer = [0] * count
    seen = [False] * count
    for start in range(count):
        if seen[start]:
            continue
        seen[start], members, queue = True, [start], deque([start])
        while queue:
            for other in neighbours[queue.popleft()]:
                if not seen[other]:
                    seen[other] = True
                    members.append(other)
                    queue.append(other)
        least = min(canonical_key(builder.kinds[m], builder.keys[m][1]) for m in members)
        for m in members:
            answer[m] = least
    return answer


def replay(backend: str, n: int, ops: list[tuple]) -> tuple[SnapshotBuilder, list[list[int]]]:
    builder = SnapshotBuilder()
    for i in range(n):
        # Devices with a large pk come first, so the least key is not simply the first node.
        builder.add(SERVICE if i % 3 else DEVICE, 1000 - i, f'node-{i}')
    builder.build(backend)
    answers = []
    for op in ops:
        if op[0] == 'depend':
            _, pk, a, b = op
            builder.set_dependency(pk, a, b, 'dependency', '')
        elif op[0] == 'drop':
            builder.drop_owner(op[1] * 16 + 1)  # a dependency's owner key, as set_dependency makes it
        elif op[0] == 'delete':
            doomed = [builder.remove_node(builder.kinds[node], builder.keys[node][1]) for node in op[1]]
            builder.sweep_dead({node for node in doomed if node is not None})
        else:
            answers.append(([builder.component(node) for node in range(n)], expected_components(builder)))
    answers.append(([builder.component(node) for node in range(n)], expected_components(builder)))
    return builder, answers


@COMPARE
@given(histories())
def test_components_and_removals_agree_with_a_plain_search_in_both_backends(history):
    n, ops = history
    compiled, compiled_answers = replay('rust', n, ops)
    fallback, fallback_answers = replay('python', n, ops)
    assert list(compiled.src) == list(fallback.src)
    assert list(compiled.dst) == list(fallback.dst)
    assert compiled_answers == fallback_answers
    for got, expected in compiled_answers:
        assert got == expected
