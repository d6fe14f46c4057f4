# The guide's users import the choice sets from here: `from business_application.models import EventCrit`.
from ..choices import (  # noqa: F401
    DependencyTypeChoices,
    EventCrit,
    EventStatus,
    IncidentStatusChoices,
    MaintenanceStatusChoices,
    ServiceTypeChoices,
)
from .applications import *  # noqa: F403
from .events import *  # noqa: F403
from .incidents import *  # noqa: F403
from .maps import *  # noqa: F403
