"""NetBox's own API test cases for every model: token auth, object permissions, brief mode, bulk operations."""

from datetime import UTC, datetime

from django.contrib.contenttypes.models import ContentType

from utilities.testing import APIViewTestCases

from business_application.models import (
    BusinessApplication,
    Event,
    EventSource,
    Incident,
    Maintenance,
    ServiceDependency,
    TechnicalService,
)

NAMESPACE = 'plugins-api:business_application'


# The bases of every test case below (a tuple, not a class, so pytest does not collect it on its own).
CRUD = (
    APIViewTestCases.GetObjectViewTestCase,
    APIViewTestCases.ListObjectsViewTestCase,
    APIViewTestCases.CreateObjectViewTestCase,
    APIViewTestCases.UpdateObjectViewTestCase,
    APIViewTestCases.DeleteObjectViewTestCase,
)


class BusinessApplicationAPITest(*CRUD):
    view_namespace = NAMESPACE
    model = BusinessApplication
    brief_fields = ['appcode', 'description', 'display', 'id', 'name', 'url']
    create_data = [
        {'appcode': 'APP4', 'name': 'Payroll', 'owner': 'HR IT'},
        {'appcode': 'APP5', 'name': 'Shop'},
        {'appcode': 'APP6', 'name': 'Search', 'link': 'https://example.invalid/app6'},
    ]
    bulk_update_data = {'owner': 'Platform team'}

    @classmethod
    def setUpTestData(cls):
        BusinessApplication.objects.bulk_create(
            [BusinessApplication(appcode=f'APP{i}', name=f'Application {i}') for i in range(1, 4)]
        )


class TechnicalServiceAPITest(*CRUD):
    view_namespace = NAMESPACE
    model = TechnicalService
    brief_fields = ['description', 'display', 'id', 'name', 'service_type', 'url']
    create_data = [
        {'name': 'Database', 'service_type': 'technical'},
        {'name': 'Checkout', 'service_type': 'logical'},
        {'name': 'DNS'},
    ]
    bulk_update_data = {'description': 'managed by the platform team'}

    @classmethod
    def setUpTestData(cls):
        TechnicalService.objects.bulk_create([TechnicalService(name=f'Service {i}') for i in range(1, 4)])


class ServiceDependencyAPITest(*CRUD):
    view_namespace = NAMESPACE
    model = ServiceDependency
    brief_fields = ['dependency_type', 'display', 'id', 'name', 'url']
    bulk_update_data = {'description': 'reviewed'}

    @classmethod
    def setUpTestData(cls):
        services = TechnicalService.objects.bulk_create([TechnicalService(name=f'S{i}') for i in range(1, 7)])
        ServiceDependency.objects.bulk_create(
            [
                ServiceDependency(name=f'd{i}', upstream_service=services[0], downstream_service=services[i])
                for i in range(1, 4)
            ]
        )
        cls.create_data = [
            {'name': 'n1', 'upstream_service': services[1].pk, 'downstream_service': services[4].pk},
            {
                'name': 'n2',
                'upstream_service': services[2].pk,
                'downstream_service': services[5].pk,
                'dependency_type': 'redundancy',
            },
            {
                'name': 'n3',
                'upstream_service': services[3].pk,
                'downstream_service': services[5].pk,
                'dependency_type': 'redundancy',
            },
        ]
        cls.services = services

    def test_self_dependency_is_rejected(self):
        self.add_permissions('business_application.add_servicedependency')
        service = self.services[0].pk
        response = self.client.post(
            self._get_list_url(),
            {
                'name': 'loop',
                'upstream_service': service,
                'downstream_service': service,
            },
            format='json',
            **self.header,
        )
        self.assertEqual(response.status_code, 400)
        self.assertIn('downstream_service', response.data)
        self.assertFalse(ServiceDependency.objects.filter(name='loop').exists())


class EventSourceAPITest(*CRUD):
    view_namespace = NAMESPACE
    model = EventSource
    brief_fields = ['description', 'display', 'id', 'name', 'url']
    create_data = [{'name': 'alertmanager'}, {'name': 'zabbix'}, {'name': 'checkmk', 'description': 'site A'}]
    bulk_update_data = {'description': 'production monitoring'}

    @classmethod
    def setUpTestData(cls):
        EventSource.objects.bulk_create([EventSource(name=f'source {i}') for i in range(1, 4)])


class EventAPITest(*CRUD):
    view_namespace = NAMESPACE
    model = Event
    brief_fields = ['criticallity', 'display', 'id', 'message', 'status', 'url']
    bulk_update_data = {'message': 'edited by hand'}

    @classmethod
    def setUpTestData(cls):
        source = EventSource.objects.create(name='prometheus')
        Event.objects.bulk_create(
            [
                Event(message=f'alert {i}', status='ok', criticallity='info', dedup_id=f'd{i}', event_source=source)
                for i in range(1, 4)
            ]
        )
        cls.create_data = [
            {'message': 'a', 'status': 'ok', 'criticallity': 'info', 'dedup_id': 'n1', 'event_source': source.pk},
            {'message': 'b', 'status': 'ok', 'criticallity': 'warning', 'dedup_id': 'n2', 'event_source': source.pk},
            {'message': 'c', 'status': 'suppressed', 'criticallity': 'high', 'dedup_id': 'n3'},
        ]


class IncidentAPITest(*CRUD):
    view_namespace = NAMESPACE
    model = Incident
    brief_fields = ['display', 'id', 'severity', 'status', 'title', 'url']
    create_data = [
        {'title': 'Payroll slow', 'status': 'investigating', 'severity': 'high', 'commander': 'Ana'},
        {'title': 'Mail queue', 'severity': 'warning'},
        {'title': 'Planned failover', 'status': 'monitoring', 'severity': 'info'},
    ]
    bulk_update_data = {'commander': 'NOC shift B'}

    @classmethod
    def setUpTestData(cls):
        Incident.objects.bulk_create([Incident(title=f'Incident {i}', severity='critical') for i in range(1, 4)])


class MaintenanceAPITest(*CRUD):
    view_namespace = NAMESPACE
    model = Maintenance
    brief_fields = ['display', 'end', 'id', 'start', 'status', 'url']
    bulk_update_data = {'description': 'kernel patching'}

    @classmethod
    def setUpTestData(cls):
        services = TechnicalService.objects.bulk_create([TechnicalService(name=f'M{i}') for i in range(1, 4)])
        service_type = ContentType.objects.get_for_model(TechnicalService)
        start, end = datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)
        Maintenance.objects.bulk_create(
            [Maintenance(content_type=service_type, object_id=s.pk, start=start, end=end) for s in services]
        )
        cls.create_data = [
            {
                'content_type': 'business_application.technicalservice',
                'object_id': s.pk,
                'start': datetime(2026, 12, 5, 1, tzinfo=UTC),
                'end': datetime(2026, 12, 5, 3, tzinfo=UTC),
                'description': 'patching',
            }
            for s in services
        ]
