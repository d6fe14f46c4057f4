"""An "Events & incidents" tab on NetBox's device, virtual machine and cluster pages.

The tables load through the plugin's own list views, filtered by the object, so the user's object permissions on
events and incidents apply and the tab costs the same few queries however many events the object has. Imported
from the plugin's ``ready()``: NetBox builds the core models' URLs from the views registered by then.
"""

from django.utils.translation import gettext_lazy as _

from dcim.models import Device
from netbox.ui import layout, panels
from netbox.views import generic
from utilities.views import ViewTab, register_model_view
from virtualization.models import Cluster, VirtualMachine

__all__ = ('ClusterEventsView', 'DeviceEventsView', 'VirtualMachineEventsView')


def _pk(context):
    return context['object'].pk


def _tab_layout(filter_name):
    return layout.SimpleLayout(
        bottom_panels=[
            panels.ObjectsTablePanel(
                'business_application.incident',
                title=_('Incidents with an event on this object'),
                filters={filter_name: _pk},
            ),
            panels.ObjectsTablePanel(
                'business_application.event',
                title=_('Events on this object'),
                filters={filter_name: _pk},
                exclude_columns=['target'],
            ),
        ],
    )


def _events_view(model, filter_name):
    """The tab's view on ``model``'s page: the object's incidents and events, filtered by ``filter_name``."""
    view = type(
        f'{model.__name__}EventsView',
        (generic.ObjectView,),
        {
            '__module__': __name__,
            '__doc__': f'The "Events & incidents" tab of a {model._meta.verbose_name}.',
            'queryset': model.objects.all(),
            'template_name': 'generic/object.html',
            'tab': ViewTab(label=_('Events & incidents'), permission='business_application.view_event', weight=2100),
            'layout': _tab_layout(filter_name),
        },
    )
    return register_model_view(model, 'business_events', path='business-events')(view)


DeviceEventsView = _events_view(Device, 'device_id')
VirtualMachineEventsView = _events_view(VirtualMachine, 'virtual_machine_id')
ClusterEventsView = _events_view(Cluster, 'cluster_id')
