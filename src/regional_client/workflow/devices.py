"""The workflow's view of the devices: one small facade over the component services.

The engine calls intent-level methods (``set_port``, ``pxe_write``, ``power_boot_pxe`` ...);
this module maps them onto the switch manager, PXE generator, DHCP service and BMC controller.
A component that is disabled (``None``) makes its step a recorded no-op ("skipped"), so a site
without switch automation, say, still installs servers; the steps check before calling, so a
call to a disabled one is a bug (``RuntimeError``). The services are typed by the protocols of
:mod:`regional_client.workflow.ports`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from regional_client.model import Task
from regional_client.workflow.ports import BootConfigs, DhcpBindings, Power, SwitchPorts

if TYPE_CHECKING:
    from regional_client.drivers.bmc.base import BmcTarget

ACTOR = "workflow"

D = TypeVar("D")


def _enabled(service: D | None, what: str) -> D:
    if service is None:
        raise RuntimeError(f"{what} is disabled: its step should have been skipped")
    return service


@dataclass
class Devices:
    switch: SwitchPorts | None = None
    pxe: BootConfigs | None = None
    dhcp: DhcpBindings | None = None
    bmc: Power | None = None

    @property
    def _switch(self) -> SwitchPorts:
        return _enabled(self.switch, "switch automation")

    @property
    def _bmc(self) -> Power:
        return _enabled(self.bmc, "BMC control")

    # ----- switch ---------------------------------------------------------------------------

    async def locate_port(self, task: Task) -> tuple[str, str]:
        """The server's switch and port: from the task, else found by MAC."""
        if task.switch.port:
            name = task.switch.name or self._switch.entry(None).name
            return name, task.switch.port
        loc = await self._switch.find_port(task.mac, task.switch.name)
        return loc.switch, loc.port

    def install_port_config(self, task: Task, switch: str | None) -> dict[str, Any]:
        entry = self._switch.entry(switch)
        if task.switch.mode == "trunk":
            vlans = sorted(set(task.switch.vlans or [entry.install_vlan]))
            native = task.switch.native_vlan or entry.install_vlan
            return {"mode": "trunk", "vlans": vlans, "native_vlan": native}
        vlan = task.switch.vlans[0] if task.switch.vlans else entry.install_vlan
        return {"mode": "access", "vlans": [vlan]}

    async def set_port(
        self, switch: str | None, port: str | None, cfg: dict[str, Any], sn: str
    ) -> dict[str, Any] | None:
        """Apply (verified, rolled back on failure); returns the port's config before it."""
        from regional_client.drivers.switch.base import PortConfig

        pc = PortConfig(
            cfg.get("mode", "access"),
            tuple(cfg.get("vlans", ())),
            cfg.get("native_vlan"),
            cfg.get("description"),
        )
        result = await self._switch.configure(pc, switch=switch, port=port, actor=ACTOR, sn=sn)
        return dict(result.previous.to_dict()) if result is not None else None

    async def production_port(self, switch: str | None, port: str | None, sn: str) -> None:
        await self._switch.set_production_vlan(switch=switch, port=port, actor=ACTOR, sn=sn)

    # ----- PXE / DHCP ---------------------------------------------------------------------------

    async def pxe_write(self, task: Task) -> None:
        await _enabled(self.pxe, "PXE config generation").generate(task.model_dump(mode="json"))

    async def pxe_remove(self, mac: str) -> None:
        await _enabled(self.pxe, "PXE config generation").remove(mac)

    async def dhcp_bind(self, task: Task) -> None:
        await _enabled(self.dhcp, "DHCP").add_binding(
            task.mac, str(task.network.ip), hostname=task.hostname, actor=ACTOR, sn=task.sn
        )

    async def dhcp_unbind(self, mac: str, sn: str) -> None:
        await _enabled(self.dhcp, "DHCP").remove_binding(mac, actor=ACTOR, sn=sn)

    # ----- BMC ----------------------------------------------------------------------------------

    def _target(self, task: Task) -> BmcTarget:
        return self._bmc.target_for(task.model_dump(mode="json"), task.sn)

    async def boot_device(self, task: Task, device: str, persistent: bool) -> None:
        await self._bmc.set_boot_device(self._target(task), device, persistent, actor=ACTOR)

    async def power_on_or_reset(self, task: Task) -> str:
        """Power the server on if it is off, else reset it. Returns what was done."""
        from regional_client.drivers.bmc.base import PowerState

        target = self._target(task)
        state = await self._bmc.power_status(target, actor=ACTOR)
        if state == PowerState.OFF:
            await self._bmc.power_on(target, actor=ACTOR)
            return "power_on"
        await self._bmc.power_reset(target, actor=ACTOR)
        return "power_reset"

    async def power_cycle(self, task: Task) -> None:
        await self._bmc.power_cycle(self._target(task), actor=ACTOR)
