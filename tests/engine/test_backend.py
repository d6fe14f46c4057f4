"""Backend selection, the typed wrapper, and importing the correlation package without Django."""

import dataclasses
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from business_application.correlation import backend as backend_module
from business_application.correlation import fallback
from business_application.correlation.backend import ENV_VAR, backend_name, load_graph_class
from business_application.correlation.errors import BackendUnavailableError, GraphError
from business_application.correlation.graph import BlastRadius, Decision, DependencyGraph, Match
from business_application.correlation.kinds import CARRIES, DEPENDS, DEVICE, REDUNDANT, SERVICE

REPO = Path(__file__).resolve().parents[2]
LOGGER = 'business_application.correlation.backend'


@pytest.fixture
def no_compiled_core(monkeypatch):
    """Makes ``business_application._core`` unimportable and forgets an earlier fallback warning."""
    monkeypatch.setitem(sys.modules, 'business_application._core', None)
    monkeypatch.setattr(backend_module, '_warned', False)


def test_python_backend_is_the_fallback():
    assert load_graph_class('python') is fallback.Graph
    assert backend_name(fallback.Graph) == 'python'


def test_rust_and_auto_load_the_compiled_core():
    from business_application import _core

    assert load_graph_class('rust') is _core.Graph
    assert load_graph_class('auto') is _core.Graph
    assert backend_name(_core.Graph) == 'rust'


def test_default_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(ENV_VAR, 'python')
    assert load_graph_class() is fallback.Graph
    monkeypatch.delenv(ENV_VAR)
    assert backend_name(load_graph_class()) == 'rust'


def test_unknown_backend_names_the_allowed_values():
    with pytest.raises(ValueError, match=r"unknown engine backend 'java'; expected one of auto, rust, python"):
        load_graph_class('java')


def test_auto_falls_back_with_one_warning(no_compiled_core, caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert load_graph_class('auto') is fallback.Graph
        assert load_graph_class('auto') is fallback.Graph
    warnings = [r for r in caplog.records if r.name == LOGGER]
    assert len(warnings) == 1
    assert 'pure-Python fallback' in warnings[0].getMessage()


def test_rust_without_the_compiled_core_says_how_to_build_it(no_compiled_core):
    with pytest.raises(BackendUnavailableError, match='maturin develop') as info:
        load_graph_class('rust')
    assert isinstance(info.value, ImportError)


@pytest.mark.parametrize('name', ['rust', 'python'])
def test_dependency_graph_wraps_answers_in_dataclasses(name):
    # device 2 carries service 0; 1 depends on 0; 3 is a redundant provider of 0
    graph = DependencyGraph.build(
        [SERVICE, SERVICE, DEVICE, SERVICE],
        [0, 2, 3, 2],
        [1, 0, 0, 2],
        [DEPENDS, CARRIES, REDUNDANT, DEPENDS],
        [-1, -1, 4, -1],
        backend=name,
    )
    assert graph.backend == name
    assert (graph.node_count, graph.edge_count, graph.skipped_self_loops) == (4, 3, 1)
    assert graph.footprint(2) == [2, 0]
    assert graph.maintenance_scope(2) == [2, 0]

    decision = graph.decide(2, 3, 10.0, [(3, None, [1]), (2, 5.0, [-1, 3])], 5, 100, 0.0, 20.0, 0.8, 0.6, 0.4)
    assert decision == Decision(
        matches=(
            Match(0, 0.6, 'dependency', 0.6, 1.0, 1.0, 0, (0, 1), 'downstream'),
            Match(1, (0.6 * 0.875) * 0.9, 'dependency', 0.6, 0.875, 0.9, 1, (0, 3), 'upstream'),
        ),
        capped=False,
        visited=decision.visited,
    )
    assert decision.visited == 4  # service 1 found by both down walks, service 3 by both up walks
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.capped = True  # type: ignore[misc]

    assert graph.rank_upstream([2, 1], 5, 100) == [1, 0]
    assert graph.blast_radius([2], 5, 100) == BlastRadius(down=(0, 1), degraded=(), capped=False)
    assert isinstance(graph.raw, load_graph_class(name))
    with pytest.raises(GraphError):
        graph.footprint(4)


def test_correlation_package_imports_without_django():
    """Every module of the correlation package imports with django and netbox made unimportable."""
    code = """
import importlib, pkgutil, sys

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.partition('.')[0] in ('django', 'netbox'):
            raise ImportError(f'{name} is blocked in this test')

sys.meta_path.insert(0, Blocked())
import business_application.correlation as package
for module in pkgutil.iter_modules(package.__path__):
    importlib.import_module(f'{package.__name__}.{module.name}')
leaked = sorted(m for m in sys.modules if m.partition('.')[0] in ('django', 'netbox'))
assert not leaked, leaked
"""
    result = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
