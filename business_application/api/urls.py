from netbox.api.routers import NetBoxRouter

from . import views

app_name = 'business_application-api'

router = NetBoxRouter()
router.register('business-applications', views.BusinessApplicationViewSet)
router.register('technical-services', views.TechnicalServiceViewSet)
router.register('service-dependencies', views.ServiceDependencyViewSet)
router.register('event-sources', views.EventSourceViewSet)
router.register('events', views.EventViewSet)
router.register('incidents', views.IncidentViewSet)
router.register('maintenance', views.MaintenanceViewSet)

urlpatterns = router.urls
