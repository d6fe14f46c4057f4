"""Integer codes shared by both backends: node kinds, edge kinds and severity ranks.

See docs/engine-api.md for what each code means to the traversal.
"""

__all__ = (
    'CARRIES',
    'CABLE',
    'CLUSTER',
    'CLUSTER_MEMBER',
    'DEPENDS',
    'DEVICE',
    'EDGE_KINDS',
    'HOSTS',
    'NODE_KINDS',
    'NO_GROUP',
    'REDUNDANT',
    'SERVICE',
    'SEVERITIES',
    'SUPPORTS',
    'TERMINAL_EDGE_KINDS',
    'APPLICATION',
    'VM',
    'severity_rank',
)

# Node kinds
SERVICE = 0
DEVICE = 1
VM = 2
CLUSTER = 3
APPLICATION = 4
NODE_KINDS = (SERVICE, DEVICE, VM, CLUSTER, APPLICATION)

# Edge kinds: an edge src -> dst means dst depends on src.
DEPENDS = 0
REDUNDANT = 1
CARRIES = 2
HOSTS = 3
CLUSTER_MEMBER = 4
CABLE = 5
SUPPORTS = 6
EDGE_KINDS = (DEPENDS, REDUNDANT, CARRIES, HOSTS, CLUSTER_MEMBER, CABLE, SUPPORTS)
TERMINAL_EDGE_KINDS = (REDUNDANT, CLUSTER_MEMBER)
NO_GROUP = -1

# Severity ranks, lowest first; the names are the values of EventCrit.
SEVERITIES = ('info', 'warning', 'high', 'critical')


def severity_rank(name: str) -> int:
    """Rank of a severity name (0 for info up to 3 for critical); raises ValueError for an unknown name."""
    try:
        return SEVERITIES.index(name)
    except ValueError:
        raise ValueError(f'unknown severity {name!r}; expected one of {", ".join(SEVERITIES)}') from None
