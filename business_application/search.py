"""Global search: what an operator types into NetBox's search box finds incidents, events and the service map."""

from netbox.search import SearchIndex

from . import models


class IncidentIndex(SearchIndex):
    """Incidents by what people wrote on them. The title and probable root cause are left out: the correlator writes
    device and service names there, and a search answer (or its absence) would tell a user who may view the incident
    but not those objects their names. The incident list's own search answers on what each user sees."""

    model = models.Incident
    fields = (
        ('commander', 300),
        ('reporter', 300),
        ('description', 500),
    )
    display_attrs = ('status', 'severity', 'commander')


class EventIndex(SearchIndex):
    model = models.Event
    fields = (
        ('dedup_id', 100),
        ('message', 200),
        ('unmapped_label', 300),
    )
    display_attrs = ('status', 'criticallity', 'event_source')


class EventSourceIndex(SearchIndex):
    model = models.EventSource
    fields = (
        ('name', 100),
        ('description', 500),
    )
    display_attrs = ('description',)


class MaintenanceIndex(SearchIndex):
    model = models.Maintenance
    fields = (
        ('contact', 300),
        ('description', 500),
    )
    display_attrs = ('status', 'start', 'end')


class BusinessApplicationIndex(SearchIndex):
    model = models.BusinessApplication
    fields = (
        ('appcode', 100),
        ('name', 110),
        ('owner', 300),
        ('delegate', 300),
        ('description', 500),
    )
    display_attrs = ('name', 'owner', 'description')


class TechnicalServiceIndex(SearchIndex):
    model = models.TechnicalService
    fields = (
        ('name', 100),
        ('description', 500),
    )
    display_attrs = ('service_type', 'description')


class ServiceDependencyIndex(SearchIndex):
    model = models.ServiceDependency
    fields = (
        ('name', 100),
        ('description', 500),
    )
    display_attrs = ('upstream_service', 'downstream_service', 'dependency_type')


indexes = [
    IncidentIndex,
    EventIndex,
    EventSourceIndex,
    MaintenanceIndex,
    BusinessApplicationIndex,
    TechnicalServiceIndex,
    ServiceDependencyIndex,
]
