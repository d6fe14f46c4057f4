"""URLs of the native alert receivers, included under the plugin's API root
(``/api/plugins/business-application/alerts/<receiver>/``)."""

from django.urls import path

from . import receivers

urlpatterns = [
    path('alerts/alertmanager/', receivers.AlertmanagerReceiverView.as_view(), name='alerts-alertmanager'),
    path('alerts/grafana/', receivers.GrafanaReceiverView.as_view(), name='alerts-grafana'),
    path('alerts/pagerduty/', receivers.PagerDutyReceiverView.as_view(), name='alerts-pagerduty'),
    path('alerts/generic/', receivers.GenericReceiverView.as_view(), name='alerts-generic'),
]
