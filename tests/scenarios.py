"""Where the scenario files are: the project's copies, checked against ../shared when it is there."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCENARIO_DIR = REPO / 'scenarios'
SHARED_DIR = REPO.parent / 'shared' / 'scenarios'
SCENARIOS = sorted(SCENARIO_DIR.glob('*.yaml'))
GUIDE = [path for path in SCENARIOS if path.name.startswith(('01-', '02-'))]
