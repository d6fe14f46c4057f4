"""Times read as whole microseconds (``EpochMicros``) give the very floats that reading them as datetimes gave.

Decisions compare members' times, and the member cache must equal a fresh read to the bit, so the faster read may
not round differently from ``to_epoch`` of the datetime PostgreSQL returns."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from business_application.models import Incident
from business_application.services.incident_service import EpochMicros, from_micros, to_epoch


def moments():
    edges = [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(1900, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 12, 6, 12, 0, 0, 999_999, tzinfo=UTC),
        datetime(2262, 4, 11, 23, 47, 16, 854_775, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    ]
    rng = random.Random(6)
    start = datetime(1950, 1, 1, tzinfo=UTC)
    spread = [start + timedelta(microseconds=rng.randrange(150 * 365 * 86_400 * 10**6)) for _ in range(20_000)]
    return edges + spread


@pytest.mark.django_db
def test_whole_microseconds_give_the_floats_of_the_datetimes():
    values = moments()
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT t, (EXTRACT(EPOCH FROM t) * 1000000)::bigint FROM unnest(%s::timestamptz[]) AS t', [values]
        )
        rows = cursor.fetchall()
    assert len(rows) == len(values)
    mismatched = [(moment, micros) for moment, micros in rows if from_micros(micros) != to_epoch(moment)]
    assert mismatched == []
    assert [moment for moment, _ in rows] == values  # what went in came back: the comparison is of these moments


@pytest.mark.django_db
def test_the_expression_reads_a_column_as_its_datetime_reads():
    moment = datetime(2026, 12, 6, 11, 46, 5, 123_457, tzinfo=UTC)
    incident = Incident.objects.create(title='t', detected_at=moment)
    row = Incident.objects.filter(pk=incident.pk).annotate(
        micros=EpochMicros('detected_at'), none=EpochMicros('resolved_at')
    )
    micros, none, stored = row.values_list('micros', 'none', 'detected_at').get()
    assert micros == 1_796_557_565_123_457
    assert from_micros(micros) == to_epoch(stored) == to_epoch(moment)
    assert none is None
    assert from_micros(none) is None
