"""The plugin's settings as one validated, immutable value, shared by NetBox and the replay tool.

Names are the guide's ``BUSINESS_APP_*`` settings in lower case without the prefix; scenario files
use the same names under ``settings:``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from .kinds import SEVERITIES

__all__ = ('DEFAULT_NETWORK_ROLES', 'Settings')

DEFAULT_NETWORK_ROLES = ('switch', 'router', 'firewall', 'load-balancer', 'core-switch', 'access-switch')
_BACKENDS = ('auto', 'rust', 'python')


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every setting that changes what the plugin does, with the guide's defaults."""

    auto_incidents_enabled: bool = True
    auto_resolve_incidents: bool = True
    correlation_window_minutes: float = 15.0
    max_dependency_depth: int = 5
    correlation_threshold: float = 0.3
    require_minimum_severity: str = 'warning'
    incident_notifications_enabled: bool = True
    notification_webhooks: tuple[str, ...] = ()
    default_incident_commander: str = 'NOC Team'
    exclude_event_sources: tuple[str, ...] = ()
    reopen_window_minutes: float = 10.0
    max_incident_age_hours: float = 24.0
    service_weight: float = 0.8
    dependency_weight: float = 0.6
    infrastructure_weight: float = 0.4
    work_cap: int = 100_000
    network_roles: tuple[str, ...] = DEFAULT_NETWORK_ROLES
    #: Network device roles from the most upstream down (e.g. core-switch, then access-switch): a cable between two
    #: network devices makes the one whose role comes later depend on the other. Empty: such cables are not used.
    network_tiers: tuple[str, ...] = ()
    alert_label_order: tuple[str, ...] = (
        'device',
        'vm',
        'virtual_machine',
        'cluster',
        'service',
        'technical_service',
        'host',
        'hostname',
        'nodename',
        'instance',
    )
    engine_backend: str = 'auto'
    async_processing: bool = False
    public_url: str = ''

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, label: Callable[[str], str] = str) -> Settings:
        """Build from lower-case names; an unknown name or a bad value raises ValueError naming the setting
        as ``label(name)`` (for example ``BUSINESS_APP_CORRELATION_THRESHOLD`` in NetBox)."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        clean: dict[str, Any] = {}
        for name, value in values.items():
            if name not in fields:
                raise ValueError(f'{label(name)} is not a known setting')
            clean[name] = _coerce(label(name), fields[name].default, value)
        settings = cls(**clean)
        settings.check(label)
        return settings

    def replace(self, **changes: Any) -> Settings:
        return Settings.from_mapping({**dataclasses.asdict(self), **changes})

    def check(self, label: Callable[[str], str] = str) -> None:
        """Raise ValueError for values that are well-typed but meaningless."""
        if not 0.0 <= self.correlation_threshold <= 1.0:
            raise ValueError(
                f'{label("correlation_threshold")} must be between 0 and 1, not {self.correlation_threshold}'
            )
        for name in ('service_weight', 'dependency_weight', 'infrastructure_weight'):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f'{label(name)} must be between 0 and 1, not {getattr(self, name)}')
        limits = {
            'correlation_window_minutes': 525_600,
            'reopen_window_minutes': 525_600,
            'max_incident_age_hours': 87_600,
        }
        for name, most in limits.items():
            if not 0 <= getattr(self, name) <= most:  # also refuses NaN and infinity
                raise ValueError(f'{label(name)} must be between 0 and {most}, not {getattr(self, name)}')
        if not 1 <= self.max_dependency_depth <= 64:
            raise ValueError(
                f'{label("max_dependency_depth")} must be between 1 and 64, not {self.max_dependency_depth}'
            )
        if self.work_cap < 1:
            raise ValueError(f'{label("work_cap")} must be at least 1')
        if self.require_minimum_severity not in SEVERITIES:
            raise ValueError(
                f'{label("require_minimum_severity")} must be one of {", ".join(SEVERITIES)}, '
                f'not {self.require_minimum_severity!r}'
            )
        if self.engine_backend not in _BACKENDS:
            raise ValueError(f'{label("engine_backend")} must be one of {", ".join(_BACKENDS)}')
        if self.public_url and not self.public_url.startswith(('http://', 'https://')):
            raise ValueError(f'{label("public_url")} must be an http(s) URL such as https://netbox.example.com')
        tiers = [role.lower() for role in self.network_tiers]
        repeated = sorted({role for role in tiers if tiers.count(role) > 1})
        if repeated:
            raise ValueError(f'{label("network_tiers")} names {repeated[0]!r} twice: a role has one place in the order')
        for url in self.notification_webhooks:
            if not url.startswith(('http://', 'https://')):
                raise ValueError(f'{label("notification_webhooks")} has {url!r}, which is not an http(s) URL')

    # Derived values the engine uses
    @property
    def window_seconds(self) -> float:
        return self.correlation_window_minutes * 60.0

    @property
    def reopen_seconds(self) -> float:
        return self.reopen_window_minutes * 60.0

    @property
    def max_age_seconds(self) -> float:
        return self.max_incident_age_hours * 3600.0


def _coerce(name: str, default: Any, value: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f'{name} must be true or false, not {value!r}')
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f'{name} must be a whole number, not {value!r}')
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f'{name} must be a number, not {value!r}')
        return float(value)
    if isinstance(default, tuple):
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ValueError(f'{name} must be a list of strings, not {value!r}')
        if not all(isinstance(item, str) for item in value):
            raise ValueError(f'{name} must be a list of strings')
        return tuple(value)
    if not isinstance(value, str):
        raise ValueError(f'{name} must be a string, not {value!r}')
    return value
