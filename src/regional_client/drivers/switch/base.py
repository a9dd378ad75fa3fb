"""The switch driver interface and the values it trades in.

A driver speaks to one switch. It is async to the caller and holds at most one session (opened
by :meth:`SwitchDriver.connect`, closed by :meth:`SwitchDriver.disconnect`). Every public method
validates its arguments with :mod:`.validate` before building a command, so even a direct caller
cannot get an unchecked byte to a device; the manager validates too, earlier, before connecting.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from regional_client.core.errors import ProvisionError

if TYPE_CHECKING:
    from regional_client.drivers.switch.validate import NamingRules

Mode = Literal["access", "trunk"]


@dataclass(frozen=True, slots=True)
class PortConfig:
    """The VLAN configuration of one port (the seed's ``PortConfig``)."""

    mode: Mode = "access"
    vlans: tuple[int, ...] = ()
    """Access: exactly one VLAN. Trunk: the allowed VLANs (sorted, unique)."""
    native_vlan: int | None = None
    """Trunk only: the untagged (PVID) VLAN."""
    description: str | None = None
    """``None`` leaves the description as it is; ``""`` clears it."""

    @property
    def access_vlan(self) -> int | None:
        return self.vlans[0] if self.mode == "access" and self.vlans else None

    def matches(self, other: PortConfig) -> bool:
        """True when ``other`` (read back) satisfies this requested config."""
        if self.mode != other.mode or tuple(self.vlans) != tuple(other.vlans):
            return False
        if self.mode == "trunk" and (self.native_vlan or 1) != (other.native_vlan or 1):
            return False
        return self.description is None or self.description == (other.description or "")

    def to_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "vlans": list(self.vlans),
            "native_vlan": self.native_vlan,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PortConfig:
        """Inverse of :meth:`to_dict` (e.g. a config remembered in a task record); run the
        result through :func:`.validate.port_config` before sending it anywhere."""
        native = d.get("native_vlan")
        return cls(
            mode=d.get("mode", "access"),
            vlans=tuple(int(v) for v in d.get("vlans") or ()),
            native_vlan=int(native) if native is not None else None,
            description=d.get("description"),
        )


@dataclass(frozen=True, slots=True)
class PortStatus:
    """Operational state of a port (the seed's ``PortStatus``)."""

    port: str
    status: Literal["up", "down"]
    speed: str | None = None
    duplex: str | None = None
    vlans: tuple[int, ...] = ()
    mode: str | None = None
    description: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "port": self.port,
            "status": self.status,
            "speed": self.speed,
            "duplex": self.duplex,
            "vlans": list(self.vlans),
            "mode": self.mode,
            "description": self.description,
        }


@dataclass(frozen=True, slots=True)
class MacLocation:
    """Where a MAC address was learned."""

    port: str
    vlan: int | None = None


@dataclass(slots=True)
class ConnectionParams:
    """How to reach one switch. The password is already decrypted; never log this object."""

    host: str
    port: int | None = None
    username: str = "admin"
    password: str | None = field(default=None, repr=False)
    enable_password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    name: str = ""
    verify_tls: bool = True
    """HTTPS drivers: verify the device certificate (against ``ca_bundle`` when given: a CA,
    or the device's own self-signed certificate, pinned)."""
    ca_bundle: str | None = None
    snmp_community: str | None = field(default=None, repr=False)
    ssh_known_hosts: str | None = None
    """SSH drivers: known_hosts file the device's host key must be in."""
    host_key_pins: Any = field(default=None, repr=False)
    """SSH drivers: where host keys are pinned on first use (:mod:`.hostkeys`); None with no
    ``ssh_known_hosts``: any key is accepted (``switch.host_keys: off``)."""


@dataclass(frozen=True, slots=True)
class PortChange:
    """One requested change within a batch: ``previous`` is what the port had before."""

    port: str
    config: PortConfig
    previous: PortConfig | None = None


class SwitchDriver(abc.ABC):
    """One switch, one session at a time. Ports are canonical names (see :mod:`.validate`)."""

    vendor: str = ""
    """Registry name of the vendor (``cisco_ios``, ``huawei_vrp``, ...)."""
    naming: ClassVar[NamingRules]
    """Interface naming and description limits, used by :mod:`.validate`."""

    def __init__(self, params: ConnectionParams) -> None:
        self.params = params
        self.sent: list[str] = []
        """Every command sent to the device, in order (audit; never holds credentials)."""

    @abc.abstractmethod
    async def connect(self) -> None: ...

    @abc.abstractmethod
    async def disconnect(self) -> None: ...

    @abc.abstractmethod
    async def find_port_by_mac(self, mac: str) -> MacLocation | None:
        """``mac`` is canonical ``aa:bb:cc:dd:ee:ff``; ``None`` when not learned here."""

    @abc.abstractmethod
    async def get_port_config(self, port: str) -> PortConfig:
        """Read the port's configured mode, VLANs, native VLAN and description."""

    async def get_port_configs(self, ports: list[str]) -> dict[str, PortConfig | ProvisionError]:
        """Several ports' configurations (a failed read is that port's error, not the call's).
        Drivers that can read them in one go override this; the default reads each port."""
        out: dict[str, PortConfig | ProvisionError] = {}
        for port in ports:
            try:
                out[port] = await self.get_port_config(port)
            except ProvisionError as exc:
                out[port] = exc
        return out

    @abc.abstractmethod
    async def apply(self, changes: list[PortChange]) -> None:
        """Apply validated changes in one configuration pass.

        Raises:
            CommandFailed: the device refused a command; ``fields["port"]`` names the port whose
                block failed and ``fields["applied"]`` lists ports fully applied before it.
        """

    @abc.abstractmethod
    async def get_port_status(self, port: str) -> PortStatus: ...

    @abc.abstractmethod
    async def list_ports(self) -> list[PortStatus]: ...

    def commands_for(self, change: PortChange) -> list[str]:
        """The exact lines :meth:`apply` sends for ``change`` (for the audit record)."""
        return []

    async def save_config(self) -> None:  # noqa: B027 (optional: default does nothing)
        """Persist the running configuration (``write memory`` / ``save``)."""

    async def configure_port(self, port: str, config: PortConfig) -> None:
        """The seed's single-port call: one change, previous config read first."""
        previous = await self.get_port_config(port)
        await self.apply([PortChange(port, config, previous)])

    async def get_port_vlans(self, port: str) -> list[int]:
        return list((await self.get_port_config(port)).vlans)

    async def __aenter__(self) -> SwitchDriver:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()


__all__ = [
    "ConnectionParams",
    "MacLocation",
    "Mode",
    "PortChange",
    "PortConfig",
    "PortStatus",
    "SwitchDriver",
]
