"""An incident as ``DjangoStore`` reads it, with the parts a decision seldom needs built when first read.

Each decision reads every live incident, and scores its event against all of them from three facts: the nodes of
their members, whether one of them is failing, and their latest activity. It changes one or two. Building every
live incident's members (thousands of objects behind a failed core switch) and its blast radius for each decision
made a decision's cost grow with the incidents that are live rather than with what it changes. A
``StoredIncident`` answers the three facts from its kept members' summary (``member_cache.Kept``), builds its
members and services on first read, and parses its stored blast radius (read with its row, as text) only if asked (a
decision recomputes the blast radius before it writes it, so it never is).
"""

import dataclasses

from ..correlation.lifecycle import IncidentState

__all__ = ('StoredIncident',)

#: ``IncidentState``'s fields with their defaults: ``(name, default, factory)``.
_FIELDS = tuple(
    (field.name, field.default, None if field.default_factory is dataclasses.MISSING else field.default_factory)
    for field in dataclasses.fields(IncidentState)
)
_KEPT = frozenset({'members', 'services'})
_BLAST = frozenset({'blast_down', 'blast_degraded', 'blast_capped'})


class _Deferred:
    """A field of ``IncidentState`` that a ``StoredIncident`` may build on first read; assigning it sets it."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, incident, owner=None):
        if incident is None:
            return self
        values = incident.__dict__
        if self.name in values.get('_unbuilt', ()):
            incident._build(self.name)
        return values[self.name]

    def __set__(self, incident, value):
        values = incident.__dict__
        values[self.name] = value
        if self.name in values.get('_unbuilt', ()):
            values['_unbuilt'] = values['_unbuilt'] - {self.name}


class StoredIncident(IncidentState):
    """An ``IncidentState`` whose members (from ``member_cache``) and blast radius (from its row) are built when
    first read. Made with ``read``, not the dataclass's constructor."""

    members = _Deferred()
    services = _Deferred()
    blast_down = _Deferred()
    blast_degraded = _Deferred()
    blast_capped = _Deferred()

    @classmethod
    def read(cls, fields, kept, order, blast, blast_text=None):
        """An incident with ``fields`` (the others at their defaults). ``kept`` (a ``member_cache.Kept``, or None
        when the caller adds the members itself) gives its members and services when first read, and ``order`` then
        gets their row ids under (event, occurrence). ``blast(blast_text)`` gives the three blast fields as
        ``{field: value}`` from the stored blast radius read with the row, when one of them is first read."""
        incident = cls.__new__(cls)
        values = incident.__dict__
        for name, default, factory in _FIELDS:
            values[name] = default if factory is None else factory()
        values.update(fields)
        values['_unbuilt'] = _BLAST if kept is None else _BLAST | _KEPT
        values['_kept'] = kept
        values['_order'] = order
        values['_blast'] = blast
        values['_blast_text'] = blast_text
        return incident

    def _build(self, name):
        """Build ``name`` and the fields that come with it, those of them not assigned meanwhile."""
        values = self.__dict__
        unbuilt = values['_unbuilt']
        if name in _KEPT:
            kept = values['_kept']
            built = {'services': set(kept.services)}
            if 'members' in unbuilt:
                built['members'] = [member for member, _ in kept.members(values['_order'])]
        else:
            built = values['_blast'](values['_blast_text'])
        for field in built.keys() & unbuilt:
            values[field] = built[field]
        values['_unbuilt'] = unbuilt - built.keys()

    def _summary(self):
        """The kept members' summary while the members are not built yet, else None."""
        values = self.__dict__
        return values['_kept'] if 'members' in values.get('_unbuilt', ()) else None

    def triggered(self):
        kept = self._summary()
        return super().triggered() if kept is None else kept.triggered

    def last_activity(self):
        kept = self._summary()
        if kept is None:
            return super().last_activity()
        return self.opened_at if kept.last_activity is None else kept.last_activity

    def member_nodes(self):
        kept = self._summary()
        return super().member_nodes() if kept is None else list(kept.nodes)  # the caller's own, as the base gives

    def first_unmapped(self, label):
        kept = self._summary()
        return super().first_unmapped(label) if kept is None else kept.unmapped.get(label)

    def node_of_alert(self, alert):
        kept = self._summary()
        return super().node_of_alert(alert) if kept is None else kept.first_nodes.get(alert)
