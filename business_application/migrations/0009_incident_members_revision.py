"""A revision number for each incident's members, kept by PostgreSQL triggers (``IncidentMembersRevision``)."""

from django.db import migrations, models

MEMBERS = 'business_application_incidentevent'
EVENTS = 'business_application_event'
REVISIONS = 'business_application_incidentmembersrevision'
SEQUENCE = 'business_application_members_revision'

FORWARD = f"""
-- Numbers start from the clock (microseconds): a sequence made again (this migration undone and redone) never
-- gives a number it gave before, which a running worker may still hold members under.
CREATE SEQUENCE {SEQUENCE};
SELECT setval('{SEQUENCE}', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);

-- A new number for each incident named by the rows a statement touched; one row lock per incident, taken in
-- incident order so that two statements touching the same incidents wait for each other instead of deadlocking.
CREATE FUNCTION business_application_bump_revisions(incidents bigint[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO {REVISIONS} (incident_id, revision)
    SELECT incident_id, nextval('{SEQUENCE}')
    FROM (SELECT DISTINCT unnest(incidents) AS incident_id ORDER BY 1) AS touched
    WHERE incident_id IS NOT NULL
    ON CONFLICT (incident_id) DO UPDATE SET revision = EXCLUDED.revision
$$;

CREATE FUNCTION business_application_members_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM business_application_bump_revisions(ARRAY(SELECT incident_id FROM new_rows));
    RETURN NULL;
END $$;

CREATE FUNCTION business_application_members_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM business_application_bump_revisions(
        ARRAY(SELECT incident_id FROM old_rows UNION SELECT incident_id FROM new_rows));
    RETURN NULL;
END $$;

CREATE FUNCTION business_application_members_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM business_application_bump_revisions(ARRAY(SELECT incident_id FROM old_rows));
    RETURN NULL;
END $$;

CREATE FUNCTION business_application_event_retargeted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM business_application_bump_revisions(
        ARRAY(SELECT incident_id FROM {MEMBERS} WHERE event_id = NEW.id));
    RETURN NULL;
END $$;

-- TRUNCATE names no rows: every incident gets a new number.
CREATE FUNCTION business_application_members_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE {REVISIONS} SET revision = nextval('{SEQUENCE}');
    RETURN NULL;
END $$;

CREATE TRIGGER business_application_members_inserted AFTER INSERT ON {MEMBERS}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION business_application_members_inserted();
CREATE TRIGGER business_application_members_updated AFTER UPDATE ON {MEMBERS}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION business_application_members_updated();
CREATE TRIGGER business_application_members_deleted AFTER DELETE ON {MEMBERS}
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION business_application_members_deleted();
CREATE TRIGGER business_application_members_truncated AFTER TRUNCATE ON {MEMBERS}
    FOR EACH STATEMENT EXECUTE FUNCTION business_application_members_truncated();
-- A member's graph node and label come from its event's object.
CREATE TRIGGER business_application_event_retargeted AFTER UPDATE ON {EVENTS} FOR EACH ROW
    WHEN (OLD.content_type_id IS DISTINCT FROM NEW.content_type_id OR OLD.object_id IS DISTINCT FROM NEW.object_id
          OR OLD.unmapped_label IS DISTINCT FROM NEW.unmapped_label)
    EXECUTE FUNCTION business_application_event_retargeted();

-- Incidents that already have members start at a revision of their own.
SELECT business_application_bump_revisions(ARRAY(SELECT DISTINCT incident_id FROM {MEMBERS}));
"""

BACKWARD = f"""
DROP TRIGGER business_application_event_retargeted ON {EVENTS};
DROP TRIGGER business_application_members_truncated ON {MEMBERS};
DROP TRIGGER business_application_members_deleted ON {MEMBERS};
DROP TRIGGER business_application_members_updated ON {MEMBERS};
DROP TRIGGER business_application_members_inserted ON {MEMBERS};
DROP FUNCTION business_application_event_retargeted();
DROP FUNCTION business_application_members_truncated();
DROP FUNCTION business_application_members_deleted();
DROP FUNCTION business_application_members_updated();
DROP FUNCTION business_application_members_inserted();
DROP FUNCTION business_application_bump_revisions(bigint[]);
DROP SEQUENCE {SEQUENCE};
"""


class Migration(migrations.Migration):
    dependencies = [
        ('business_application', '0008_legacy_title_objects'),
    ]

    operations = [
        migrations.CreateModel(
            name='IncidentMembersRevision',
            fields=[
                ('incident_id', models.BigIntegerField(primary_key=True, serialize=False)),
                ('revision', models.BigIntegerField()),
            ],
            options={
                'default_permissions': (),
            },
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
