"""NetBox's URLs with the receivers mounted where ``business_application/api/urls.py`` mounts them,
so these tests run whether or not that file includes ``receiver_urls`` yet."""

from django.conf import settings
from django.urls import include, path

from netbox.urls import urlpatterns as netbox_urlpatterns

from business_application.api.receiver_urls import urlpatterns as receiver_urlpatterns

urlpatterns = [
    path(f'{settings.BASE_PATH}api/plugins/business-application/', include(receiver_urlpatterns)),
    *netbox_urlpatterns,
]
