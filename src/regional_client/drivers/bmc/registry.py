"""Which class implements which BMC protocol: a built-in map plus entry points.

A new protocol is one module with a :class:`~.base.BmcDriver` subclass, registered either in
``BUILTIN`` or, from another package, under the entry-point group ``regional_client.bmc_drivers``::

    [project.entry-points."regional_client.bmc_drivers"]
    myproto = "my_package.bmc:MyProtoDriver"

Entry points override built-ins of the same name. An unknown or unimportable driver raises
:class:`~regional_client.core.errors.ConfigError` naming it and how to fix it.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from regional_client.core.errors import ConfigError
from regional_client.drivers.bmc.base import BmcDriver

GROUP = "regional_client.bmc_drivers"
BUILTIN: dict[str, str] = {
    "ipmi": "regional_client.drivers.bmc.ipmi:IpmiDriver",
    "redfish": "regional_client.drivers.bmc.redfish:RedfishDriver",
}
_cache: dict[str, type[BmcDriver]] = {}


def available() -> dict[str, str]:
    """Protocol name → ``module:Class`` for every known driver."""
    found = dict(BUILTIN)
    for ep in entry_points(group=GROUP):
        found[ep.name] = ep.value
    return found


def _import(spec: str) -> type[BmcDriver]:
    module, _, attr = spec.partition(":")
    obj = getattr(importlib.import_module(module), attr)
    if not (isinstance(obj, type) and issubclass(obj, BmcDriver)):
        raise TypeError(f"{spec} is not a BmcDriver subclass")
    return obj


def get_driver_class(protocol: str) -> type[BmcDriver]:
    """The driver class for ``protocol`` (``ipmi``, ``redfish``, ...)."""
    cls = _cache.get(protocol)
    if cls is not None:
        return cls
    spec = available().get(protocol)
    if spec is None:
        known = ", ".join(sorted(available()))
        raise ConfigError(f"unknown BMC type {protocol!r} (known: {known})", bmc_type=protocol)
    try:
        cls = _import(spec)
    except (ImportError, AttributeError, TypeError) as e:
        raise ConfigError(
            f"BMC driver {protocol!r} ({spec}) cannot be loaded: {e}; "
            "is the package providing it installed?",
            bmc_type=protocol,
        ) from None
    _cache[protocol] = cls
    return cls


__all__ = ["BUILTIN", "GROUP", "available", "get_driver_class"]
