"""Attack 12: scripts/env.sh reads unexported ports from .work/ports so that a shell that forgot a second checkout's
exports still reaches that checkout's servers, "never another checkout's on the default ports". A ports file whose
last line has no newline (a hand edit, ``printf`` without ``\\n``, an editor that strips it) or has CRLF endings, or
written in the ``export NAME=value`` form that .demo/env uses, is read silently as no port at all: the shell falls
back to 55432/56379/8000, the default checkout's servers.

No server is started: env.sh is sourced from a copy in a temporary directory, and only its variables are printed.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAVED = {'NBA_PG_PORT': '55450', 'NBA_REDIS_PORT': '56450', 'NBA_WEB_PORT': '8150'}


def source_env(tmp_path, content, then):
    """Runs ``then`` after sourcing a copy of env.sh beside a .work/ports of ``content``, no port exported."""
    (tmp_path / 'scripts').mkdir()
    shutil.copy(REPO / 'scripts' / 'env.sh', tmp_path / 'scripts' / 'env.sh')
    (tmp_path / '.work').mkdir()
    (tmp_path / '.work' / 'ports').write_bytes(content.encode())
    env = {k: v for k, v in os.environ.items() if k not in SAVED}
    script = f'set -euo pipefail; source scripts/env.sh; {then}'
    return subprocess.run(['bash', '-c', script], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)


def ports_seen(tmp_path, content):
    result = source_env(tmp_path, content, 'echo "$NBA_PG_PORT $NBA_REDIS_PORT $NBA_WEB_PORT"')
    assert result.returncode == 0, result.stderr
    return dict(zip(SAVED, result.stdout.split(), strict=True))


def test_a_well_formed_ports_file_is_read(tmp_path):
    content = ''.join(f'{k}={v}\n' for k, v in SAVED.items())
    assert ports_seen(tmp_path, content) == SAVED


@pytest.mark.parametrize(
    'content',
    [
        ''.join(f'{k}={v}\n' for k, v in SAVED.items()).rstrip('\n'),
        ''.join(f'{k}={v}\r\n' for k, v in SAVED.items()),
    ],
    ids=['no-final-newline', 'crlf'],
)
def test_a_slightly_malformed_ports_file_does_not_fall_back_to_another_checkouts_ports(tmp_path, content):
    seen = ports_seen(tmp_path, content)
    assert seen == SAVED, f'env.sh silently used {seen} (the default checkout has 55432/56379/8000)'


def test_a_port_that_is_not_a_number_stops_the_script_instead_of_using_the_default(tmp_path):
    result = source_env(tmp_path, 'NBA_PG_PORT=55450\nNBA_WEB_PORT=81x60\n', 'echo "reached $NBA_WEB_PORT"')
    assert result.returncode != 0
    assert 'reached' not in result.stdout
    assert 'NBA_WEB_PORT in' in result.stderr
    assert 'is not a port: 81x60' in result.stderr
