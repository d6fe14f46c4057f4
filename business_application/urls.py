"""UI routes under /plugins/business-application/; the views register themselves with @register_model_view."""

from django.urls import include, path

from utilities.urls import get_model_urls

from . import views  # noqa: F401  (importing the views registers them)

#: URL prefix of each model's pages, by model name.
MODEL_PATHS = (
    ('businessapplication', 'business-applications'),
    ('technicalservice', 'technical-services'),
    ('servicedependency', 'service-dependencies'),
    ('eventsource', 'event-sources'),
    ('event', 'events'),
    ('maintenance', 'maintenance'),
    ('incident', 'incidents'),
)

urlpatterns = [
    route
    for model_name, prefix in MODEL_PATHS
    for route in (
        path(f'{prefix}/', include(get_model_urls('business_application', model_name, detail=False))),
        path(f'{prefix}/<int:pk>/', include(get_model_urls('business_application', model_name))),
    )
]
