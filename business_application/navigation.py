"""The plugin's menu: operations first (incidents and events are what an operator opens), the service map after."""

from django.utils.translation import gettext_lazy as _

from netbox.plugins import PluginMenu, PluginMenuButton, PluginMenuItem


def _item(model, label):
    """A menu entry for a model's list, with add and import buttons shown only to users allowed to add."""
    link = f'plugins:business_application:{model}'
    add_permission = [f'business_application.add_{model}']
    return PluginMenuItem(
        link=f'{link}_list',
        link_text=label,
        permissions=[f'business_application.view_{model}'],
        buttons=(
            PluginMenuButton(f'{link}_add', _('Add'), 'mdi mdi-plus-thick', permissions=add_permission),
            PluginMenuButton(f'{link}_bulk_import', _('Import'), 'mdi mdi-upload', permissions=add_permission),
        ),
    )


operations = (
    _item('incident', _('Incidents')),
    _item('event', _('Events')),
    _item('eventsource', _('Event sources')),
    _item('maintenance', _('Maintenance')),
)

service_map = (
    _item('businessapplication', _('Business applications')),
    _item('technicalservice', _('Technical services')),
    _item('servicedependency', _('Service dependencies')),
)

menu = PluginMenu(
    label=_('Business Application'),
    groups=(
        (_('Operations'), operations),
        (_('Service map'), service_map),
    ),
    icon_class='mdi mdi-sitemap',
)
