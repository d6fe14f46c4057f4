"""Hiding, per request user, the names of objects they may not view inside an incident's own texts.

The correlator writes an incident's title ("Service disruption affecting checkout-api"), its probable root cause
label (``device:web-01``) and its timeline messages ("device:web-01 joined (... via service:checkout-api)") once,
for everyone. A user who may view the incident but not a device or service named there must not learn the name
from them, so every page, table, export and API answer that shows these texts passes them through a ``Redactor``
built for the rows it shows: the stored data is never changed.

A redactor finds the map objects a batch of texts may name (the incident's root cause and the services its title
names, labels written as ``kind:name``), asks which of them the user may view with one query per kind of object
whatever the number of rows, and replaces each hidden one by ``(hidden device)``, ``(hidden service)`` and so on,
as the pictures do.
"""

import re
from collections import defaultdict
from functools import cached_property

from django.http import HttpRequest

from netbox.context import current_request

from ..correlation.kinds import APPLICATION, CLUSTER, DEVICE, SERVICE, VM
from ..correlation.mapbuilder import KIND_PREFIX
from ..services.graph_loader import current_map
from .maps import KIND_MODELS

__all__ = ('Redactor', 'hidden_services', 'page_redactor', 'placeholder', 'shown_text', 'shown_title')

#: Where a label may start inside a text: a kind prefix, not glued to a word before it.
LABEL_START = re.compile(r'(?<![\w.-])(?:' + '|'.join(sorted(map(re.escape, KIND_PREFIX.values()))) + r'):')
#: Where a label written inside a text may end (names may hold spaces, so each of these is tried).
LABEL_END = re.compile(r'[\s,;)>]|$')
#: What follows a label in the texts the correlator writes (timeline messages, member paths, root causes): ``a -> b``,
#: ``x joined (score``, ``x fired again``, ``after x resolved it``, ``x cleared``, the ``)`` closing a joined message's
#: path, or the end. A label there not followed by one of these goes on past the name found on the map: it is that of
#: an object renamed or deleted since (or cut by a length limit), and is redacted up to the next of them.
CORRELATOR_END = re.compile(r' -> | joined \(| fired again| resolved it| cleared$|\)$|$')
#: Where a redacted label's placeholder ends in a title a person wrote: as above, or at a list's comma or a closing
#: parenthesis. Ending every redacted label there, hidden or unknown, keeps the rest of a name with spaces out of
#: sight, and keeps a guessed name from reading back differently whether or not the object exists.
WRITTEN_END = re.compile(r' -> | joined \(| fired again| resolved it| cleared|, |\)|$')


PREFIX_KINDS = {prefix: kind for kind, prefix in KIND_PREFIX.items()}
#: The length of an incident's title, past which the correlator's text is cut.
TITLE_LENGTH = 255
#: The titles the correlator writes (``MapView.title_for``): the kinds of object each one lists after "affecting".
CORRELATOR_TITLE = re.compile(
    r'^(?P<what>Service disruption|Infrastructure alert) affecting (?P<names>.+?)(?P<more> and \d+ more)?$'
)
TITLE_KINDS = {'Service disruption': (SERVICE, APPLICATION), 'Infrastructure alert': (DEVICE, VM, CLUSTER, SERVICE)}


def placeholder(kind):
    return f'(hidden {KIND_PREFIX[kind]})'


class Redactor:
    """The texts of a batch of incidents and timeline entries, as one user may see them."""

    def __init__(self, user, service_map=None):
        self.user = user
        self.map = service_map
        self.hidden: set[int] = set()
        self.hidden_services: set[int] = set()  # affected services' pks the user may not view
        self.hidden_events: set[int] = set()  # root-cause events' pks the user may not view
        self._checked: set[int] = set()  # the nodes whose visibility is known

    # Preparing: one visibility query per kind of object named anywhere in the batch

    def prepare(self, incidents=(), texts=()):
        """Learn which objects named in these incidents (and in the extra ``texts``) the user may not view.

        A user who may view every object of every kind (a superuser, or permissions without constraints) has
        nothing hidden: that costs no query and does not load the map."""
        incidents, texts = list(incidents), list(texts)
        named = any(
            i.root_cause
            or i.blast_radius
            or getattr(i, 'title_objects', None)
            or self._legacy_title(i)
            or LABEL_START.search(i.title or '')
            for i in incidents
        ) or any(LABEL_START.search(t or '') for t in texts)
        if not named or self.everything:
            return self
        if self.map is None:
            self.map = current_map()
        nodes = set()
        for incident in incidents:
            nodes.update(self._labels_in(incident.title or ''))
            nodes.update(self._title_nodes(incident))
            nodes.update(node for _, _, node in self._title_objects(incident) if node is not None)
            nodes.update(self._labels_in(incident.root_cause or ''))
            nodes.update(node for _, node in self._blast_items(incident.blast_radius))
        for text in texts:
            nodes.update(self._labels_in(text or ''))
        # A redactor prepared again (one kept for a whole request) asks only about the objects it has not seen
        self.hidden |= self._hidden(nodes - self._checked)
        self._checked |= nodes
        return self

    @cached_property
    def everything(self):
        return self.sees_everything(self.user)

    def prepare_services(self, incidents):
        """Learn which of these incidents' affected services (prefetched) the user may not view: one query, none
        when the user may view every service."""
        from ..models import TechnicalService

        everything = TechnicalService.objects.all()
        visible = everything.restrict(self.user, 'view')
        if visible is everything:
            return self
        pks = {service.pk for incident in incidents for service in incident.affected_services.all()}
        if pks:
            self.hidden_services |= pks - set(visible.filter(pk__in=pks).values_list('pk', flat=True))
        return self

    def prepare_events(self, incidents):
        """Learn which of these incidents' root-cause events the user may not view: one query, none when the user
        may view every event."""
        from ..models import Event

        everything = Event.objects.all()
        visible = everything.restrict(self.user, 'view')
        pks = {incident.root_cause_event_id for incident in incidents} - {None}
        if pks and visible is not everything:
            self.hidden_events |= pks - set(visible.filter(pk__in=pks).values_list('pk', flat=True))
        return self

    @staticmethod
    def sees_everything(user):
        """Whether NetBox's own restriction leaves every kind of map object unfiltered for this user."""
        for model in KIND_MODELS.values():
            everything = model.objects.all()
            if everything.restrict(user, 'view') is not everything:
                return False
        return True

    def _title_nodes(self, incident):
        """The objects the correlator named in the title: the root cause and the services (or application) it
        carries, read from the map as ``MapView.title_for`` reads them."""
        root = self.map.by_label.get(incident.root_cause or '')
        if root is None:
            return []
        if self.map.kinds[root] == APPLICATION:
            return [root]
        return [root, *self.map.services_of(root)]

    def _title_objects(self, incident):
        """(name, kind, node or None) of each object the correlator recorded naming in the title."""
        found = []
        stored = getattr(incident, 'title_objects', None)
        for entry in stored if isinstance(stored, list) else ():
            if (
                isinstance(entry, list)
                and len(entry) == 3
                and isinstance(entry[0], str)
                and type(entry[1]) is int
                and isinstance(entry[2], str)
            ):
                kind = PREFIX_KINDS.get(entry[0])
                if kind is not None:
                    found.append((entry[2], kind, self.map.node(kind, entry[1])))
        return found

    def _blast_items(self, blast):
        """(item, node) for each stored blast-radius item naming a map object."""
        found = []
        for side in ('down', 'degraded'):
            items = blast.get(side) if isinstance(blast, dict) else None
            for item in items if isinstance(items, list) else ():
                _, node = self._item_object(item)
                if node is not None:
                    found.append((item, node))
        return found

    def _item_object(self, item):
        """The kind and the map node of a stored blast-radius item: (None, None) for one naming no kind of map
        object, (kind, None) for an object no longer on the map."""
        kind_text = item.get('type') if isinstance(item, dict) else None
        kind = PREFIX_KINDS.get(kind_text) if isinstance(kind_text, str) else None
        if kind is None or type(item.get('id')) is not int:
            return None, None
        return kind, self.map.node(kind, item['id'])

    def _labels_in(self, text):
        """The map objects written as ``kind:name`` in a text, the longest label found at each place."""
        found = []
        for start in LABEL_START.finditer(text):
            best = None
            for end in LABEL_END.finditer(text, start.end()):
                node = self.map.by_label.get(text[start.start() : end.start()])
                if node is not None:
                    best = node
            if best is not None:
                found.append(best)
        return found

    def _hidden(self, nodes):
        by_kind = defaultdict(set)
        for node in nodes:
            kind, pk = self.map.keys[node]
            by_kind[kind].add(pk)
        hidden = set()
        for kind, pks in by_kind.items():
            visible = set(
                KIND_MODELS[kind].objects.restrict(self.user, 'view').filter(pk__in=pks).values_list('pk', flat=True)
            )
            hidden.update(self.map.node(kind, pk) for pk in pks - visible)
        return hidden

    # Redacting: no query

    def label_text(self, text, written=False):
        """A text with each ``kind:name`` label of a hidden object, and each label no longer on the map (an object
        renamed or deleted since) of a kind the user may not view all of, replaced by a placeholder that runs to the
        label's end as ``CORRELATOR_END`` finds it, or ``WRITTEN_END`` in a title a person wrote (``written``). A
        label on the map is its longest reading there; in the correlator's texts, only one followed by what the
        correlator writes after a label."""
        if not text or self.map is None or self.everything:
            return text
        ends = WRITTEN_END if written else CORRELATOR_END
        parts, done = [], 0
        for start in LABEL_START.finditer(text):
            if start.start() < done:
                continue
            node, end = self._label_at(text, start)
            if node is not None and not written and not CORRELATOR_END.match(text, end):
                node = None  # the name goes on: that of an object renamed or deleted since, or cut
            if node is not None and node not in self.hidden:
                parts.append(text[done:end])  # shown as written, and no label is looked for inside it
                done = end
                continue
            kind = self.map.kinds[node] if node is not None else PREFIX_KINDS[text[start.start() : start.end() - 1]]
            if node is None and (self.sees_all(kind) or LABEL_END.match(text, start.end())):
                continue  # an unknown label the user could view anyway, or a prefix with no name after it
            parts += [text[done : start.start()], placeholder(kind)]
            done = ends.search(text, end if node is not None else start.end() + 1).start()
        return ''.join(parts) + text[done:] if parts else text

    def _label_at(self, text, start):
        """The node of the longest label on the map starting at ``start`` and where it ends, or (None, None)."""
        found = (None, None)
        for end in LABEL_END.finditer(text, start.end()):
            node = self.map.by_label.get(text[start.start() : end.start()])
            if node is not None:
                found = (node, end.start())
        return found

    def sees_all(self, kind):
        """Whether the user may view every object of this kind (no query)."""
        everything = KIND_MODELS[kind].objects.all()
        return everything.restrict(self.user, 'view') is everything

    def title(self, incident):
        """The incident's title with the names of hidden objects the correlator put there replaced: those it recorded
        naming (``title_objects``, by id: renames and moves do not matter), or for a title from an earlier version,
        those of the root cause and its services on the map and those the blast radius stored. A title a person
        wrote names no recorded object: only the labels in it are replaced."""
        if not incident.title or self.map is None or self.everything:
            return incident.title
        legacy = self._legacy_title(incident)
        if legacy is not None:
            return self._legacy_names(incident, legacy)
        text = self.label_text(incident.title, written=True)
        hidden = []
        hidden += [
            (name, kind)
            for name, kind, node in self._title_objects(incident)
            if (node in self.hidden if node is not None else not self.sees_all(kind))
        ]
        for name, kind in sorted({pair for pair in hidden if pair[0]}, key=lambda pair: -len(pair[0])):
            if name in text:
                text = re.sub(r'(?<![\w.-])' + re.escape(name) + r'(?![\w.-])', placeholder(kind), text)
            elif len(incident.title) >= TITLE_LENGTH:
                text = self._cut_name(text, name, kind)
        return text

    @staticmethod
    def _legacy_title(incident):
        """The match of a title an earlier version of the correlator wrote without recording what it names."""
        if getattr(incident, 'title_objects', None) is not None:
            return None
        return CORRELATOR_TITLE.match(incident.title or '')

    def _legacy_names(self, incident, match):
        """A correlator's title from an earlier version, each name it lists shown only when it is known to be a
        visible object's: one the root cause or the blast radius still names, which the user may view, or any name
        when the user may view every object of each kind the title lists. The others (hidden objects, names two
        objects share, objects renamed or deleted since) read as a placeholder."""
        kinds = TITLE_KINDS[match.group('what')]
        visible, hidden = {}, {}
        nodes = self._title_nodes(incident) + [node for _, node in self._blast_items(incident.blast_radius)]
        for node in nodes:
            (hidden if node in self.hidden else visible)[self.map.names[node]] = self.map.kinds[node]
        unseen = next((kind for kind in kinds if not self.sees_all(kind)), None)
        names = match.group('names')
        shown = []
        for name in names.split(', ') if match.group('what') == 'Service disruption' else [names]:
            if name in hidden:
                shown.append(placeholder(hidden[name]))
            elif name in visible or unseen is None:
                shown.append(name)
            else:
                shown.append(placeholder(unseen))
        return f'{match.group("what")} affecting {", ".join(shown)}{match.group("more") or ""}'

    @staticmethod
    def _cut_name(text, name, kind):
        """A title the length limit cut inside a name ends with the start of that name: replace it."""
        for cut in range(len(name) - 1, 0, -1):
            if text.endswith(name[:cut]) and text[: len(text) - cut].endswith((' ', ', ')):
                return text[: len(text) - cut] + placeholder(kind)
        return text

    def root_cause(self, incident):
        """The probable root cause, a label: a placeholder when it names an object the user may not view, or an
        object no longer on the map under that label (renamed or deleted) of a kind the user may not view all of."""
        text = incident.root_cause
        if not text or self.everything or self.map is None:
            return text
        kind = PREFIX_KINDS.get(text.partition(':')[0]) if ':' in text else None
        if kind is not None and text not in self.map.by_label and not self.sees_all(kind):
            return placeholder(kind)
        return self.label_text(text)

    def blast_radius(self, blast):
        """A copy of a stored blast radius with the names of hidden objects replaced (ids and types kept)."""
        if self.everything or self.map is None or not isinstance(blast, dict):
            return blast
        copy = dict(blast)
        for side in ('down', 'degraded'):
            if isinstance(blast.get(side), list):
                copy[side] = [
                    {**item, 'name': placeholder(kind)} if (kind := self._hidden_item_kind(item)) is not None else item
                    for item in blast[side]
                ]
        return copy

    def _hidden_item_kind(self, item):
        """The kind of a stored blast-radius item the user may not see named: a hidden object, or one no longer on
        the map (deleted since) of a kind the user may not view all of; None otherwise."""
        kind, node = self._item_object(item)
        if kind is None:
            return None
        if node is None:
            return None if self.sees_all(kind) else kind
        return kind if node in self.hidden else None

    def is_hidden_item(self, item):
        """Whether a stored blast-radius item names an object the user may not view (or one deleted since, for a user
        who may not view all of its kind)."""
        return not self.everything and self.map is not None and self._hidden_item_kind(item) is not None

    def apply(self, incident):
        """Redact an incident fetched for display only (never saved afterwards): its title, root cause and the
        names in its blast radius."""
        incident.title, incident.root_cause = self.title(incident), self.root_cause(incident)
        incident.blast_radius = self.blast_radius(incident.blast_radius)
        return incident


def page_redactor():
    """The redactor of the web page or REST API request being served, kept on its request; ``None`` outside a request
    (workers, jobs and commands show nothing to anyone). What NetBox records or sends of an incident reads the
    stored title (``Incident.to_objectchange``, the REST serializer without a request for event rules)."""
    request = current_request.get()
    if not isinstance(request, HttpRequest):
        return None
    redactor = getattr(request, '_business_app_redactor', None)
    if redactor is None or redactor.user is not request.user:
        redactor = request._business_app_redactor = Redactor(request.user)
    return redactor


def shown_title(incident):
    """The incident's title as the user of the page being rendered may see it (see ``page_redactor``).

    This is what ``str(incident)`` gives, so every heading, breadcrumb, link, search result, delete prompt and
    changelog or journal tab of a page shows it; one query per kind of object the first time a request meets an
    object, none for a user who may view every device, machine, cluster and service."""
    redactor = page_redactor()
    if redactor is None or not incident.title:
        return incident.title
    return redactor.prepare([incident]).title(incident)


def shown_text(text):
    """A text the correlator wrote (a timeline entry's message) as the user of the page being rendered may see it."""
    redactor = page_redactor()
    if redactor is None or not text:
        return text
    return redactor.prepare(texts=[text]).label_text(text)


def hidden_services(user, incident):
    """The incident's affected services this user may not view (left out of what they are shown, so kept when they
    write back what they were shown): one query, none for a user who may view every service."""
    from ..models import TechnicalService

    services = TechnicalService.objects.all()
    if (visible := services.restrict(user, 'view')) is services:
        return []
    return list(incident.affected_services.exclude(pk__in=visible.values('pk')))
