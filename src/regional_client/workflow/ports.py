"""What the workflow needs from the component services, declared here as ``Protocol``s.

The workflow owns these interfaces; the services satisfy them structurally, without importing
anything from the workflow: :class:`SwitchPorts` (``drivers.switch.manager.SwitchManager``),
:class:`BootConfigs` (``pxe.service.PxeService``), :class:`DhcpBindings`
(``dhcp.service.DhcpService``) and :class:`Power` (``drivers.bmc.controller.BmcController``).
Each lists only the calls :mod:`regional_client.workflow.devices` makes, so a fake for a test
needs nothing more. The block at the end has mypy check that the real services fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from regional_client.config.switch import SwitchEntry
    from regional_client.drivers.bmc.base import BmcTarget, PowerState
    from regional_client.drivers.switch.base import PortConfig


class PortLocated(Protocol):
    """Where a MAC address was learned."""

    @property
    def switch(self) -> str: ...
    @property
    def port(self) -> str: ...


class PortChanged(Protocol):
    """The outcome of a port change: the config it replaced."""

    @property
    def previous(self) -> PortConfig: ...


class SwitchPorts(Protocol):
    def entry(self, name: str | None) -> SwitchEntry: ...

    async def find_port(self, mac: str, switch: str | None = ...) -> PortLocated: ...

    async def configure(
        self,
        config: PortConfig,
        *,
        switch: str | None = ...,
        port: str | None = ...,
        actor: str = ...,
        sn: str | None = ...,
    ) -> PortChanged: ...

    async def set_production_vlan(
        self,
        *,
        switch: str | None = ...,
        port: str | None = ...,
        actor: str = ...,
        sn: str | None = ...,
    ) -> object: ...


class BootConfigs(Protocol):
    async def generate(self, task: Mapping[str, Any]) -> object: ...
    async def remove(self, mac: str) -> object: ...


class DhcpBindings(Protocol):
    async def add_binding(
        self,
        mac: str,
        ip: str,
        hostname: str | None = ...,
        *,
        actor: str | None = ...,
        sn: str | None = ...,
    ) -> object: ...

    async def remove_binding(
        self, mac: str, *, actor: str | None = ..., sn: str | None = ...
    ) -> object: ...


class Power(Protocol):
    def target_for(self, record: Any, sn: str | None = ...) -> BmcTarget: ...

    async def set_boot_device(
        self, target: BmcTarget, device: str, persistent: bool = ..., *, actor: str = ...
    ) -> object: ...

    async def power_status(self, target: BmcTarget, actor: str = ...) -> PowerState: ...
    async def power_on(self, target: BmcTarget, actor: str = ...) -> object: ...
    async def power_reset(self, target: BmcTarget, actor: str = ...) -> object: ...
    async def power_cycle(self, target: BmcTarget, actor: str = ...) -> object: ...


if TYPE_CHECKING:  # never runs: mypy checks that the real services satisfy the protocols
    from regional_client.dhcp.service import DhcpService
    from regional_client.drivers.bmc.controller import BmcController
    from regional_client.drivers.switch.manager import SwitchManager
    from regional_client.pxe.service import PxeService

    def _the_services_fit(
        switch: SwitchManager, pxe: PxeService, dhcp: DhcpService, bmc: BmcController
    ) -> None:
        _switch: SwitchPorts = switch
        _pxe: BootConfigs = pxe
        _dhcp: DhcpBindings = dhcp
        _bmc: Power = bmc
