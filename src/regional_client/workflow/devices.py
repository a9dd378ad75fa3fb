"""The workflow's view of the devices: one small facade over the component services.

The engine calls intent-level methods (``set_port``, ``pxe_write``, ``power_boot_pxe`` ...);
this module maps them onto the switch manager, PXE generator, DHCP service and BMC controller.
A component that is disabled (``None``) makes its step a recorded no-op ("skipped"), so a site
without switch automation, say, still installs servers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from regional_client.model import Task

ACTOR = "workflow"


@dataclass
class Devices:
    switch: Any = None  # drivers.switch.manager.SwitchManager
    pxe: Any = None  # pxe.service.PxeService
    dhcp: Any = None  # dhcp.service.DhcpService
    bmc: Any = None  # drivers.bmc.controller.BmcController

    # ----- switch ---------------------------------------------------------------------------

    async def locate_port(self, task: Task) -> tuple[str, str]:
        """The server's switch and port: from the task, else found by MAC."""
        if task.switch.port:
            name = task.switch.name or self.switch.entry(None).name
            return name, task.switch.port
        loc = await self.switch.find_port(task.mac, task.switch.name)
        return loc.switch, loc.port

    def install_port_config(self, task: Task, switch: str) -> dict[str, Any]:
        entry = self.switch.entry(switch)
        if task.switch.mode == "trunk":
            vlans = sorted(set(task.switch.vlans or [entry.install_vlan]))
            native = task.switch.native_vlan or entry.install_vlan
            return {"mode": "trunk", "vlans": vlans, "native_vlan": native}
        vlan = task.switch.vlans[0] if task.switch.vlans else entry.install_vlan
        return {"mode": "access", "vlans": [vlan]}

    async def set_port(
        self, switch: str, port: str, cfg: dict[str, Any], sn: str
    ) -> dict[str, Any] | None:
        """Apply (verified, rolled back on failure); returns the port's config before it."""
        from regional_client.drivers.switch.base import PortConfig

        pc = PortConfig(
            cfg.get("mode", "access"),
            tuple(cfg.get("vlans", ())),
            cfg.get("native_vlan"),
            cfg.get("description"),
        )
        result = await self.switch.configure(pc, switch=switch, port=port, actor=ACTOR, sn=sn)
        return dict(result.previous.to_dict()) if result is not None else None

    async def production_port(self, switch: str, port: str, sn: str) -> None:
        await self.switch.set_production_vlan(switch=switch, port=port, actor=ACTOR, sn=sn)

    # ----- PXE / DHCP ---------------------------------------------------------------------------

    async def pxe_write(self, task: Task) -> None:
        await self.pxe.generate(task.model_dump(mode="json"))

    async def pxe_remove(self, mac: str) -> None:
        await self.pxe.remove(mac)

    async def dhcp_bind(self, task: Task) -> None:
        await self.dhcp.add_binding(
            task.mac, str(task.network.ip), hostname=task.hostname, actor=ACTOR, sn=task.sn
        )

    async def dhcp_unbind(self, mac: str, sn: str) -> None:
        await self.dhcp.remove_binding(mac, actor=ACTOR, sn=sn)

    # ----- BMC ----------------------------------------------------------------------------------

    def _target(self, task: Task) -> Any:
        return self.bmc.target_for(task.model_dump(mode="json"), task.sn)

    async def boot_device(self, task: Task, device: str, persistent: bool) -> None:
        await self.bmc.set_boot_device(self._target(task), device, persistent, actor=ACTOR)

    async def power_on_or_reset(self, task: Task) -> str:
        """Power the server on if it is off, else reset it. Returns what was done."""
        from regional_client.drivers.bmc.base import PowerState

        target = self._target(task)
        state = await self.bmc.power_status(target, actor=ACTOR)
        if state == PowerState.OFF:
            await self.bmc.power_on(target, actor=ACTOR)
            return "power_on"
        await self.bmc.power_reset(target, actor=ACTOR)
        return "power_reset"

    async def power_cycle(self, task: Task) -> None:
        await self.bmc.power_cycle(self._target(task), actor=ACTOR)
