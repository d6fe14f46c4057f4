"""Choice sets of the plugin's models; the values are a public surface that the guide's users type."""

from django.utils.translation import gettext_lazy as _

from utilities.choices import ChoiceSet

__all__ = (
    'DependencyTypeChoices',
    'EventCrit',
    'EventStatus',
    'IncidentStatusChoices',
    'MaintenanceStatusChoices',
    'ServiceTypeChoices',
)


class ServiceTypeChoices(ChoiceSet):
    TECHNICAL = 'technical'
    LOGICAL = 'logical'

    CHOICES = [
        (TECHNICAL, _('Technical'), 'blue'),
        (LOGICAL, _('Logical'), 'purple'),
    ]


class DependencyTypeChoices(ChoiceSet):
    NORMAL = 'normal'
    REDUNDANCY = 'redundancy'

    CHOICES = [
        (NORMAL, _('Normal'), 'orange'),
        (REDUNDANCY, _('Redundancy'), 'green'),
    ]


class EventStatus(ChoiceSet):
    TRIGGERED = 'triggered'
    OK = 'ok'
    SUPPRESSED = 'suppressed'

    CHOICES = [
        (TRIGGERED, _('Triggered'), 'red'),
        (OK, _('OK'), 'green'),
        (SUPPRESSED, _('Suppressed'), 'gray'),
    ]


class EventCrit(ChoiceSet):
    """Event and incident severity, highest first; spelled as the guide spells the field (criticallity)."""

    CRITICAL = 'critical'
    HIGH = 'high'
    WARNING = 'warning'
    INFO = 'info'

    CHOICES = [
        (CRITICAL, _('Critical'), 'red'),
        (HIGH, _('High'), 'orange'),
        (WARNING, _('Warning'), 'yellow'),
        (INFO, _('Info'), 'blue'),
    ]


class IncidentStatusChoices(ChoiceSet):
    NEW = 'new'
    INVESTIGATING = 'investigating'
    IDENTIFIED = 'identified'
    MONITORING = 'monitoring'
    RESOLVED = 'resolved'
    CLOSED = 'closed'

    CHOICES = [
        (NEW, _('New'), 'red'),
        (INVESTIGATING, _('Investigating'), 'orange'),
        (IDENTIFIED, _('Identified'), 'yellow'),
        (MONITORING, _('Monitoring'), 'blue'),
        (RESOLVED, _('Resolved'), 'green'),
        (CLOSED, _('Closed'), 'gray'),
    ]

    #: Statuses in which an incident still takes new events.
    OPEN = (NEW, INVESTIGATING, IDENTIFIED, MONITORING)
    DONE = (RESOLVED, CLOSED)


class MaintenanceStatusChoices(ChoiceSet):
    PLANNED = 'planned'
    IN_PROGRESS = 'in-progress'
    COMPLETED = 'completed'
    CANCELLED = 'cancelled'

    CHOICES = [
        (PLANNED, _('Planned'), 'cyan'),
        (IN_PROGRESS, _('In progress'), 'orange'),
        (COMPLETED, _('Completed'), 'green'),
        (CANCELLED, _('Cancelled'), 'gray'),
    ]

    #: Statuses in which a window suppresses events between its start and end.
    ACTIVE = (PLANNED, IN_PROGRESS)
