from django.urls import path

from netbox.api.routers import NetBoxRouter

from . import automation, receiver_urls, views

app_name = 'business_application-api'

router = NetBoxRouter()
router.register('business-applications', views.BusinessApplicationViewSet)
router.register('technical-services', views.TechnicalServiceViewSet)
router.register('service-dependencies', views.ServiceDependencyViewSet)
router.register('event-sources', views.EventSourceViewSet)
router.register('events', views.EventViewSet)
router.register('incidents', views.IncidentViewSet)
router.register('maintenance', views.MaintenanceViewSet)

urlpatterns = [
    path('incident-automation/process-event/', automation.ProcessEventView.as_view(), name='automation-process-event'),
    path(
        'incident-automation/process-unprocessed/',
        automation.ProcessUnprocessedView.as_view(),
        name='automation-process-unprocessed',
    ),
    path('incident-automation/status/', automation.StatusView.as_view(), name='automation-status'),
    *receiver_urls.urlpatterns,
    *router.urls,
]
