"""The plugin's settings, read from NetBox's configuration and validated at start-up.

Each guide setting ``BUSINESS_APP_<NAME>`` may be given as a top-level name in NetBox's
``configuration.py`` (or Django settings), or as ``<name>`` (either case, with or without the
prefix) under ``PLUGINS_CONFIG['business_application']``. A top-level name wins over the
plugin-config key. The environment variable ``BUSINESS_APP_ENGINE_BACKEND`` overrides the
plugin-config key (so tests and CI can force the compiled core), and a top-level setting
overrides the environment.
"""

import functools
import os

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from .correlation.settings import Settings

__all__ = ('PREFIX', 'get_settings', 'validate')

PREFIX = 'BUSINESS_APP_'
_MISSING = object()


def _configuration_module():
    try:
        from netbox.settings import configuration
    except ImportError:  # pragma: no cover - NetBox always provides it
        return None
    return configuration


def _collect() -> dict:
    values = {}
    plugin_config = getattr(django_settings, 'PLUGINS_CONFIG', {}).get('business_application', {}) or {}
    for key, value in plugin_config.items():
        name = str(key).lower().removeprefix(PREFIX.lower())
        if name not in Settings.names():
            raise ValueError(f"PLUGINS_CONFIG['business_application'][{key!r}] is not a known setting")
        values[name] = value
    backend = os.environ.get(PREFIX + 'ENGINE_BACKEND')
    if backend:
        values['engine_backend'] = backend
    configuration = _configuration_module()
    for name in Settings.names():
        for source in (configuration, django_settings):
            value = getattr(source, PREFIX + name.upper(), _MISSING) if source is not None else _MISSING
            if value is not _MISSING:
                values[name] = value
    for name in ('notification_webhooks', 'exclude_event_sources', 'network_roles', 'network_tiers'):
        if isinstance(values.get(name), list):
            values[name] = tuple(values[name])
    return values


@functools.cache
def get_settings() -> Settings:
    """The current settings; raises ImproperlyConfigured naming the bad setting."""
    try:
        return Settings.from_mapping(_collect(), label=lambda name: PREFIX + name.upper())
    except ValueError as error:
        raise ImproperlyConfigured(f'business_application: {error}') from None


def validate() -> Settings:
    get_settings.cache_clear()
    return get_settings()


@receiver(setting_changed, dispatch_uid='business_application_settings_changed')
def _forget(**kwargs):
    get_settings.cache_clear()
