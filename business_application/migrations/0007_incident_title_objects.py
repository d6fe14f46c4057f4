"""The objects an incident's title names, as the correlator wrote it. NULL where nobody recorded them (incidents
titled before this migration, or saved by a script): the redaction then reads the title through the root cause and
the blast radius. A title a person writes names none (an empty list)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ('business_application', '0006_unannounced_map_change'),
    ]

    operations = [
        migrations.AddField(
            model_name='incident',
            name='title_objects',
            field=models.JSONField(
                blank=True, default=None, editable=False, null=True, verbose_name='objects named in the title'
            ),
        ),
    ]
