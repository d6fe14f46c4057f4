"""The replay tool as a user runs it: a subprocess, both backends, exit codes, JSON and table output."""

import json
import subprocess
import sys

import pytest

from ..scenarios import GUIDE, SCENARIO_DIR, SCENARIOS, SHARED_DIR


def replay(*args):
    return subprocess.run(
        [sys.executable, '-m', 'business_application.replay', *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize('backend', ['rust', 'python'])
@pytest.mark.parametrize('path', GUIDE, ids=lambda p: p.stem)
def test_guide_scenarios_match(path, backend):
    result = replay(path, '--backend', backend, '--json')
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report['backend'] == backend
    assert report['comparison']['matched']
    assert report['comparison']['pair_precision'] == 1.0


@pytest.mark.parametrize('backend', ['rust', 'python'])
@pytest.mark.parametrize('path', SCENARIOS, ids=lambda p: p.stem)
def test_every_bundled_scenario_matches_and_prints_a_table(path, backend):
    result = replay(path, '--backend', backend)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith('scenario ')
    assert f'(backend {backend})' in result.stdout.splitlines()[0]
    assert 'MATCH: pair precision 1.0, pair recall 1.0' in result.stdout


def test_a_wrong_expectation_exits_1_and_says_what_differed(tmp_path):
    original = (SCENARIO_DIR / '01-guide-database-outage.yaml').read_text()
    text = original.replace('\n      severity: critical\n', '\n      severity: info\n')  # the expectation only
    assert text != original
    path = tmp_path / 'wrong.yaml'
    path.write_text(text)
    result = replay(path, '--json')
    assert result.returncode == 1
    differences = json.loads(result.stdout)['comparison']['differences']
    assert differences == [
        {'expected': 1, 'members': ['e1', 'e2'], 'problem': "severity: expected 'info', got 'critical'"}
    ]


def test_a_threshold_override_changes_the_grouping():
    path = SCENARIO_DIR / '02-guide-switch-failure.yaml'
    result = replay(path, '--json', '--set', 'correlation_threshold=0.5')
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report['settings']['correlation_threshold'] == 0.5
    assert len(report['incidents']) == 3
    assert report['comparison']['pair_recall'] == 0.0


@pytest.mark.parametrize(
    ('content', 'needle'),
    [
        ('graph: [1, 2]\n', 'graph: expected a mapping'),
        ('events:\n  - {t: 0, object: device:x, severity: awful, status: firing}\n', 'events[0].severity'),
        ('events:\n  - {t: 0, object: box:x, severity: info, status: firing}\n', 'events[0].object'),
        (
            'events:\n  - {t: 0, object: device:x, severity: info, status: firing, starts_at: "soon"}\n',
            'events[0].starts_at',
        ),
        ('settings: {correlation_threshold: 2}\n', 'correlation_threshold'),
    ],
)
def test_malformed_files_exit_2_with_one_line(tmp_path, content, needle):
    path = tmp_path / 'bad.yaml'
    path.write_text(content)
    result = replay(path)
    assert result.returncode == 2
    assert result.stdout == ''
    assert needle in result.stderr
    assert result.stderr.count('\n') == 1


def test_the_bundled_scenarios_are_the_shared_ones():
    if not SHARED_DIR.is_dir():
        pytest.skip('../shared is not beside this checkout')
    for shared in SHARED_DIR.glob('*.yaml'):
        assert (SCENARIO_DIR / shared.name).read_text() == shared.read_text(), shared.name
