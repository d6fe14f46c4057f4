"""Property tier fixtures: the two engine backends, loaded once. No Django is touched here.

The compiled backend must be importable: a missing ``business_application._core`` fails these
tests instead of skipping them, because their point is comparing it with the fallback.
"""

import pytest

from business_application.correlation.backend import load_graph_class
from business_application.correlation.errors import BackendUnavailableError


def _load(name: str) -> type:
    try:
        return load_graph_class(name)
    except BackendUnavailableError as exc:
        pytest.fail(f'backend {name!r} is unavailable: {exc}', pytrace=False)


@pytest.fixture(scope='session')
def compiled() -> type:
    """The compiled core's raw ``Graph`` class."""
    return _load('rust')


@pytest.fixture(scope='session')
def fallback() -> type:
    """The pure-Python fallback's raw ``Graph`` class."""
    return _load('python')


@pytest.fixture(scope='session', params=['rust', 'python'])
def graph_class(request: pytest.FixtureRequest) -> type:
    """Each backend in turn, for invariants that must hold on both."""
    return _load(request.param)
