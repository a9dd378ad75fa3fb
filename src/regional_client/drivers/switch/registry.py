"""Vendor name → driver class: built-ins plus the ``regional_client.switch_drivers`` entry points.

Config names a vendor (``type:`` / ``vendor:``); aliases from the seed (``cisco``, ``huawei``,
``h3c``) map to the built-in drivers. A third-party package adds a vendor with::

    [project.entry-points."regional_client.switch_drivers"]
    juniper_junos = "mypkg.junos:JunosDriver"

An unknown or unimportable vendor fails at startup with :class:`ConfigError` naming the fix.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from importlib.metadata import entry_points

from regional_client.core.errors import ConfigError
from regional_client.drivers.switch.base import SwitchDriver
from regional_client.drivers.switch.validate import NamingRules

GROUP = "regional_client.switch_drivers"

BUILTIN: dict[str, str] = {
    "cisco_ios": "regional_client.drivers.switch.cisco:CiscoIos",
    "huawei_vrp": "regional_client.drivers.switch.huawei:HuaweiVrp",
    "h3c_comware": "regional_client.drivers.switch.h3c:H3cComware",
    "arista_eos": "regional_client.drivers.switch.arista:AristaEapi",
}

ALIASES: dict[str, str] = {
    "cisco": "cisco_ios",
    "ios": "cisco_ios",
    "huawei": "huawei_vrp",
    "vrp": "huawei_vrp",
    "h3c": "h3c_comware",
    "comware": "h3c_comware",
    "hp_comware": "h3c_comware",
    "arista": "arista_eos",
    "eos": "arista_eos",
}


def canonical_vendor(name: str) -> str:
    key = name.strip().lower()
    return ALIASES.get(key, key)


def available() -> list[str]:
    return sorted(set(BUILTIN) | {ep.name for ep in entry_points(group=GROUP)})


def _load(spec: str) -> type[SwitchDriver]:
    module, _, attr = spec.partition(":")
    return getattr(import_module(module), attr)  # type: ignore[no-any-return]


@cache
def driver_class(vendor: str) -> type[SwitchDriver]:
    """The driver class for ``vendor`` (canonical name or alias)."""
    name = canonical_vendor(vendor)
    eps = {ep.name: ep for ep in entry_points(group=GROUP)}
    try:
        if name in eps:
            cls = eps[name].load()
        elif name in BUILTIN:
            cls = _load(BUILTIN[name])
        else:
            raise ConfigError(
                f"unknown switch vendor {vendor!r}; available: {', '.join(available())}",
                key="switch.type",
            )
    except ImportError as exc:
        raise ConfigError(
            f"switch vendor {vendor!r} cannot be loaded ({exc}); "
            "install it with: pip install 'lpmos-regional-client'",
            key="switch.type",
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, SwitchDriver)):
        raise ConfigError(f"{vendor!r} is not a SwitchDriver", key="switch.type")
    return cls


def naming_rules(vendor: str) -> NamingRules:
    """The vendor's :class:`~.validate.NamingRules` (for validation before any connection)."""
    return driver_class(vendor).naming


__all__ = [
    "ALIASES",
    "BUILTIN",
    "GROUP",
    "available",
    "canonical_vendor",
    "driver_class",
    "naming_rules",
]
