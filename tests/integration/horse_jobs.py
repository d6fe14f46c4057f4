"""Jobs the worker tests queue: they report what a forked horse inherited from its worker."""

from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import get_resolver


def inherited_caches():
    """Whether this process's URL resolver is filled already (reading it otherwise reads NetBox's whole URL
    configuration), how many queries naming the plugin's and the map's content types takes, and whether the
    notifications' URL opener is built."""
    from business_application import notifications
    from business_application.models import Event, Incident, IncidentEvent, TechnicalService

    filled = get_resolver()._populated  # noqa: SLF001 - Django's own flag; no public way to ask
    with CaptureQueriesContext(connection) as queries:
        ContentType.objects.get_for_models(Event, Incident, IncidentEvent, TechnicalService)
        ContentType.objects.get_by_natural_key('dcim', 'device')
    return {
        'urls_filled': filled,
        'content_type_queries': len(queries),
        'url_opener_built': notifications._opener is not None,  # noqa: SLF001 - the cache under test
    }
