"""attack13: decisions against unbuilt ``StoredIncident``s write what decisions against built members write.

The same scenarios are decided twice (one at a time and in batches): as 3388c84 reads live incidents (answers from
``member_cache.Kept``'s summary), and with every incident's members built before it is asked anything (as before
3388c84, when ``_load`` built them all). Everything written must be the same.
"""

import pytest

from business_application.correlation.scenario import load_scenario, parse_scenario
from business_application.services.stored_incident import StoredIncident

from ..scenarios import SCENARIOS
from .test_batch_decisions import run, storm_text


def eager_summary(self):
    self.members  # noqa: B018 - build them, as the store did before
    return None


CASES = [*SCENARIOS, 'generated-storm']


@pytest.mark.django_db(transaction=False)
@pytest.mark.parametrize('batched', [False, True])
@pytest.mark.parametrize('source', CASES, ids=lambda p: getattr(p, 'stem', p))
def test_lazy_incidents_decide_as_built_ones(source, batched, monkeypatch):
    scenario = parse_scenario(storm_text()) if source == 'generated-storm' else load_scenario(source)
    answered = []
    summary = StoredIncident._summary

    def counted(self):
        kept = summary(self)
        answered.append(kept is not None)
        return kept

    monkeypatch.setattr(StoredIncident, '_summary', counted)
    lazy = run(scenario, 7, batched=batched)
    if source == 'generated-storm':
        assert any(answered), 'the lazy run never answered from a summary'
    monkeypatch.setattr(StoredIncident, '_summary', eager_summary)
    eager = run(scenario, 7, batched=batched)
    assert lazy == eager


COMMITTED = {}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize('mode', ['eager', 'lazy'])
def test_committed_batches_decide_alike_with_kept_members(mode, monkeypatch):
    """Committed batches: the next batches read the members the previous ones kept (``remember_members``), so the
    incidents they score against and merge are built, lazily, from those ``Kept`` entries."""
    from business_application.services import member_cache

    if mode == 'eager':
        monkeypatch.setattr(StoredIncident, '_summary', eager_summary)
    hits = member_cache.stats()['hits']
    COMMITTED[mode] = run(parse_scenario(storm_text()), 7, batched=True, committed=True)
    assert member_cache.stats()['hits'] > hits
    if mode == 'lazy':
        if 'eager' not in COMMITTED:
            pytest.skip('run with the eager case first')
        assert COMMITTED['lazy'] == COMMITTED['eager']
