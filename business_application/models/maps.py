"""Bookkeeping of the service map's snapshots that must outlive a process."""

from django.db import models

__all__ = ('UnannouncedMapChange',)


class UnannouncedMapChange(models.Model):
    """A committed map change no process could announce in Redis yet (one row at most).

    The process that made the change announces it once Redis answers again; this row lets any process do it
    instead, at its next full load of the map, should that process stop first."""

    since = models.DateTimeField(help_text='When the latest announcement failed.')

    class Meta:
        default_permissions = ()

    def __str__(self):
        return f'map change unannounced since {self.since:%Y-%m-%d %H:%M:%S}'
