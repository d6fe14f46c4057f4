"""Drop the global search's cached incident titles and root causes: they name devices and services, and the search
index no longer holds them (see ``search.IncidentIndex``)."""

from django.db import migrations


def forget(apps, schema_editor):
    ContentType = apps.get_model('contenttypes', 'ContentType')
    CachedValue = apps.get_model('extras', 'CachedValue')
    incident = ContentType.objects.filter(app_label='business_application', model='incident').first()
    if incident is not None:
        CachedValue.objects.filter(object_type_id=incident.pk, field__in=('title', 'root_cause')).delete()


class Migration(migrations.Migration):
    dependencies = [
        ('business_application', '0004_event_pending_states'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('extras', '0144_customfield_status'),
    ]

    operations = [migrations.RunPython(forget, migrations.RunPython.noop)]
