"""One registry for every kind of device driver: built-ins listed here once, plugins by entry point.

A kind (BMC protocols, switch vendors) is a :class:`DriverRegistry`: a name → ``module:Class``
map of the built-in drivers, optional aliases, and an entry-point group through which another
distribution adds or overrides drivers::

    [project.entry-points."regional_client.switch_drivers"]
    juniper_junos = "my_package.junos:JunosDriver"

    [project.entry-points."regional_client.bmc_drivers"]
    myproto = "my_package.bmc:MyProtoDriver"

Classes are imported on first use and cached. An unknown name, an unimportable module or a class
of the wrong type raises :class:`~regional_client.core.errors.ConfigError` naming the config key,
the known names, and the package to install: the distribution that registered the entry point,
or the missing module an import failed on.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from regional_client.core.errors import ConfigError

if TYPE_CHECKING:
    from regional_client.drivers.bmc.base import BmcDriver
    from regional_client.drivers.switch.base import SwitchDriver

T = TypeVar("T")


def _load(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


class DriverRegistry(Generic[T]):
    def __init__(
        self,
        kind: str,
        group: str,
        base: str,
        builtin: Mapping[str, str],
        *,
        key: str,
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        self.kind = kind
        """What a name selects, for messages: ``BMC type``, ``switch vendor``."""
        self.group = group
        self.base = base
        """``module:Class`` every driver must subclass (imported lazily)."""
        self.builtin = dict(builtin)
        self.key = key
        """The config key that names a driver (``bmc.protocol``, ``switch.type``)."""
        self.aliases = dict(aliases or {})
        self._cache: dict[str, type[T]] = {}

    def canonical(self, name: str) -> str:
        key = name.strip().lower()
        return self.aliases.get(key, key)

    def _plugins(self) -> dict[str, EntryPoint]:
        return {ep.name: ep for ep in entry_points(group=self.group)}

    def available(self) -> list[str]:
        return sorted(set(self.builtin) | set(self._plugins()))

    def get(self, name: str) -> type[T]:
        """The driver class for ``name`` (canonical name or alias)."""
        canon = self.canonical(name)
        cls = self._cache.get(canon)
        if cls is None:
            cls = self._cache[canon] = self._resolve(name, canon)
        return cls

    def _resolve(self, name: str, canon: str) -> type[T]:
        ep = self._plugins().get(canon)
        spec = ep.value if ep is not None else self.builtin.get(canon)
        if spec is None:
            raise ConfigError(
                f"unknown {self.kind} {name!r} (known: {', '.join(self.available())})",
                key=self.key, name=name,
            )  # fmt: skip
        try:
            cls = _load(spec)
        except (ImportError, AttributeError) as e:
            package = ep.dist.name if ep is not None and ep.dist is not None else None
            missing = getattr(e, "name", None)
            hint = package or (missing.split(".")[0] if missing else "lpmos-regional-client")
            raise ConfigError(
                f"{self.kind} driver {canon!r} ({spec}) cannot be loaded: {e}; "
                f"fix: pip install {hint}",
                key=self.key, name=name,
            ) from None  # fmt: skip
        base = _load(self.base)
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise ConfigError(
                f"{self.kind} driver {canon!r} ({spec}) is not a {base.__name__} subclass",
                key=self.key, name=name,
            )  # fmt: skip
        return cls


BMC_DRIVERS: DriverRegistry[BmcDriver] = DriverRegistry(
    "BMC type",
    "regional_client.bmc_drivers",
    "regional_client.drivers.bmc.base:BmcDriver",
    {
        "ipmi": "regional_client.drivers.bmc.ipmi:IpmiDriver",
        "redfish": "regional_client.drivers.bmc.redfish:RedfishDriver",
    },
    key="bmc.protocol",
)

SWITCH_DRIVERS: DriverRegistry[SwitchDriver] = DriverRegistry(
    "switch vendor",
    "regional_client.switch_drivers",
    "regional_client.drivers.switch.base:SwitchDriver",
    {
        "cisco_ios": "regional_client.drivers.switch.cisco:CiscoIos",
        "huawei_vrp": "regional_client.drivers.switch.huawei:HuaweiVrp",
        "h3c_comware": "regional_client.drivers.switch.h3c:H3cComware",
        "arista_eos": "regional_client.drivers.switch.arista:AristaEapi",
    },
    key="switch.type",
    aliases={
        "cisco": "cisco_ios",
        "ios": "cisco_ios",
        "huawei": "huawei_vrp",
        "vrp": "huawei_vrp",
        "h3c": "h3c_comware",
        "comware": "h3c_comware",
        "hp_comware": "h3c_comware",
        "arista": "arista_eos",
        "eos": "arista_eos",
    },
)

__all__ = ["BMC_DRIVERS", "SWITCH_DRIVERS", "DriverRegistry"]
