"""The BMC driver interface and the values it speaks in.

A driver talks one protocol (IPMI, Redfish, ...) to one BMC and does exactly what it is asked,
once, within the per-call timeout it was given. Policy — skipping "power on" of a machine that
is already on, turning a reset of an off machine into a power-on, bounded retries, reading back
every change and the concurrency cap — lives in one place, :mod:`.controller`, so every driver
gets it for free and a new protocol is one small module.

Errors: drivers raise :class:`~regional_client.core.errors.DriverTimeout` (no answer in time),
:class:`~regional_client.core.errors.DriverAuthError` (credentials refused) or
:class:`~regional_client.core.errors.BmcError` (anything else), always with ``device=`` naming the
BMC (``ipmi://10.0.0.5:623``), never with the password.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class PowerState(StrEnum):
    ON = "on"
    OFF = "off"


class BootDevice(StrEnum):
    PXE = "pxe"
    DISK = "disk"
    CDROM = "cdrom"
    BIOS = "bios"
    NONE = "none"
    """No override: the firmware's own boot order (only ever read, never set)."""


SETTABLE_DEVICES = (BootDevice.PXE, BootDevice.DISK, BootDevice.CDROM, BootDevice.BIOS)


@dataclass(frozen=True, slots=True)
class BootSetting:
    """A boot override as read back from a BMC. ``uefi`` is None when the BMC does not say."""

    device: BootDevice
    persistent: bool = False
    uefi: bool | None = None


@dataclass(frozen=True, slots=True)
class SystemInfo:
    """What a BMC tells about itself and its machine; fields it does not report stay None."""

    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    uuid: str | None = None
    firmware_version: str | None = None
    bios_version: str | None = None
    power_state: PowerState | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "extra"}
        out.update(self.extra)
        return out


@dataclass(frozen=True, slots=True)
class BmcTarget:
    """How to reach one BMC. ``password`` is plaintext here (decrypted) and never printed."""

    host: str
    username: str
    password: str = field(repr=False)
    type: str = "ipmi"
    port: int | None = None
    sn: str | None = None
    """The server's serial number, for messages and audit records."""
    system_id: str | None = None
    """Redfish: which ComputerSystem behind this BMC (blade chassis, emulators)."""

    @property
    def name(self) -> str:
        """``ipmi://host:port`` — how errors, logs and audit records name this BMC."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port else ""
        system = f"#{self.system_id}" if self.system_id else ""
        return f"{self.type}://{host}{port}{system}"


class BmcDriver(abc.ABC):
    """One protocol talking to one BMC. Every method is async and bounded by ``timeout``.

    Constructed as ``Driver(target, options, timeout)`` where ``options`` is the protocol's
    config section (e.g. :class:`~regional_client.config.bmc.IpmiOptions`).
    """

    protocol: str = ""

    def __init__(self, target: BmcTarget, options: Any, timeout: float) -> None:
        self.target = target
        self.options = options
        self.timeout = timeout

    @property
    def name(self) -> str:
        return self.target.name

    @abc.abstractmethod
    async def get_power_status(self) -> PowerState: ...

    @abc.abstractmethod
    async def power_on(self) -> None: ...

    @abc.abstractmethod
    async def power_off(self) -> None:
        """Hard power off (what an installer needs; no guest cooperation expected)."""

    @abc.abstractmethod
    async def power_reset(self) -> None:
        """Warm reset of a running machine (the controller never calls it on an off one)."""

    @abc.abstractmethod
    async def set_boot_device(
        self, device: BootDevice, persistent: bool = False, uefi: bool | None = None
    ) -> None:
        """Boot override: ``uefi`` True/False forces the boot mode, None leaves it as is."""

    @abc.abstractmethod
    async def get_boot_device(self) -> BootSetting: ...

    @abc.abstractmethod
    async def get_system_info(self) -> SystemInfo: ...

    async def close(self) -> None:  # noqa: B027 (optional hook)
        """Release sessions/connections. Drivers without any keep this no-op."""


__all__ = [
    "SETTABLE_DEVICES",
    "BmcDriver",
    "BmcTarget",
    "BootDevice",
    "BootSetting",
    "PowerState",
    "SystemInfo",
]
