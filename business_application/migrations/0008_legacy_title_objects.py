"""Record the objects named in the titles of incidents from earlier versions, where the stored data says which they
are: the title's service or application names (as the correlator writes them, after "affecting"), its root cause,
and the names its blast radius stored. A title some name of which cannot be told for sure keeps NULL, and with it
the redaction's reading through the root cause and blast radius."""

import re

from django.db import migrations

#: The correlator's titles: "Service disruption affecting a, b and 3 more", "Infrastructure alert affecting x".
TITLE = re.compile(r'^(Service disruption|Infrastructure alert) affecting (?P<names>.+?)(?: and \d+ more)?$')
MODELS = {
    'service': ('business_application', 'TechnicalService'),
    'app': ('business_application', 'BusinessApplication'),
    'device': ('dcim', 'Device'),
    'vm': ('virtualization', 'VirtualMachine'),
    'cluster': ('virtualization', 'Cluster'),
}


def title_objects(title, root_cause, blast_radius, find):
    """``[kind prefix, id, name]`` for each name the title gives, or None when one of them is not known for sure.
    ``find(prefix, name)`` is the id of the one object of that kind and name, or None."""
    match = TITLE.match(title or '')
    if match is None:
        return None
    kinds = ('service', 'app') if match.group(1) == 'Service disruption' else ('device', 'vm', 'cluster', 'service')
    names = match.group('names').split(', ') if match.group(1) == 'Service disruption' else [match.group('names')]
    known = {}
    for side in ('down', 'degraded'):
        for item in (blast_radius or {}).get(side) or () if isinstance(blast_radius, dict) else ():
            if isinstance(item, dict) and isinstance(item.get('name'), str) and type(item.get('id')) is int:
                known.setdefault(item['name'], [item.get('type'), item['id']])
    prefix, _, label_name = (root_cause or '').partition(':')
    found = []
    for name in names:
        entry = known.get(name)
        if entry is None and name == label_name and prefix in kinds:
            entry = [prefix, find(prefix, name)]
        if entry is None:
            entry = next(([kind, pk] for kind in kinds if (pk := find(kind, name)) is not None), None)
        if entry is None or entry[0] not in MODELS or entry[1] is None:
            return None
        found.append([entry[0], entry[1], name])
    return found


def backfill(apps, schema_editor):
    Incident = apps.get_model('business_application', 'Incident')
    cache = {}

    def find(prefix, name):
        if (prefix, name) not in cache:
            ids = list(apps.get_model(*MODELS[prefix]).objects.filter(name=name).values_list('pk', flat=True)[:2])
            cache[prefix, name] = ids[0] if len(ids) == 1 else None
        return cache[prefix, name]

    for incident in (
        Incident.objects.filter(title_objects__isnull=True)
        .only('pk', 'title', 'root_cause', 'blast_radius')
        .iterator(chunk_size=500)
    ):
        named = title_objects(incident.title, incident.root_cause, incident.blast_radius, find)
        if named is not None:
            Incident.objects.filter(pk=incident.pk).update(title_objects=named)


class Migration(migrations.Migration):
    dependencies = [
        ('business_application', '0007_incident_title_objects'),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
