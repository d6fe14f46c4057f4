"""netbox-business-application: groups monitoring alerts into incidents over NetBox's dependency map.

The correlation engine (``business_application.correlation``) imports without Django; the plugin
configuration below is only defined when NetBox is importable.
"""

from importlib import metadata

try:
    __version__ = metadata.version('netbox-business-application')
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = '0.0.0'

try:
    from netbox.plugins import PluginConfig
except ImportError:  # the engine and the replay tool run without NetBox
    PluginConfig = None

if PluginConfig is not None:

    class BusinessApplicationConfig(PluginConfig):
        """NetBox plugin registration: models, REST API, pages, signals and settings validation."""

        name = 'business_application'
        verbose_name = 'Business Application'
        description = 'Business applications, technical services and alert-to-incident correlation'
        version = __version__
        author = 'netbox-business-application developers'
        base_url = 'business-application'
        min_version = '4.7.0'
        max_version = '4.7.99'
        default_settings = {}

        def ready(self):
            super().ready()
            from . import settings as plugin_settings

            plugin_settings.validate()
            from . import jobs, signals  # noqa: F401
            from .ui import tabs  # noqa: F401  (core models' URLs are built from the views registered by now)

    config = BusinessApplicationConfig
