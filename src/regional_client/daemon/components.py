"""Wiring of the optional components (BMC, switch, DHCP, TFTP/PXE/HTTP boot, workflow).

Each builder looks at its config section, constructs its service with explicit dependencies,
registers its admin router and health check on the runtime, and returns the service (or None
when the section is disabled). :class:`~regional_client.daemon.server.RegionalClient` starts them in
the order of :data:`BUILDERS` and stops them in reverse; the workflow comes last because it
drives all the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from regional_client.daemon.runtime import Runtime
from regional_client.dhcp.component import build_dhcp
from regional_client.drivers.bmc.component import build_bmc
from regional_client.httpboot.component import build_http_boot
from regional_client.pxe.component import build_pxe
from regional_client.tftp.component import build_tftp

Builder = Callable[[Runtime], Any]


def build_switch(rt: Runtime) -> Any:
    cfg = rt.config.switch
    if not cfg.enabled or not cfg.switches():
        return None
    from regional_client.drivers.switch.api import router
    from regional_client.drivers.switch.manager import SwitchManager

    mgr = SwitchManager(cfg, audit=rt.audit, metrics=rt.metrics, decrypt=rt.decrypt)
    rt.services["switch"] = mgr
    rt.routers.append(router())
    return mgr


def build_boot_configs(rt: Runtime) -> Any:
    """PXE/GRUB/iPXE configs live in the TFTP root: only when TFTP or HTTP boot serves them."""
    if not (rt.config.tftp.enabled or rt.config.http_boot.enabled):
        return None
    return build_pxe(rt)


def build_workflow(rt: Runtime) -> Any:
    if not rt.config.workflow.enabled:
        return None
    from regional_client.workflow.devices import Devices
    from regional_client.workflow.engine import Workflow

    s = rt.services
    devices = Devices(
        switch=s.get("switch"), pxe=s.get("pxe"), dhcp=s.get("dhcp"), bmc=s.get("bmc")
    )
    wf = Workflow(
        config=rt.config.workflow,
        store=rt.store,
        keys=rt.keys,
        cache=rt.cache,
        devices=devices,
        metrics=rt.metrics,
        audit=rt.audit,
        instance_id=rt.instance_id,
        ensure_token=rt.agent.ensure_agent_token,
        boot_activity=rt.boot_activity,
    )
    s["workflow"] = wf
    rt.health_checks["workflow"] = lambda: {"ok": True, "running": len(wf.running())}
    return wf


BUILDERS: list[Builder] = [
    build_bmc,
    build_switch,
    build_dhcp,
    build_tftp,
    build_boot_configs,
    build_http_boot,
    build_workflow,
]


def build_components(rt: Runtime) -> list[Any]:
    services = []
    for build in BUILDERS:
        svc = build(rt)
        if svc is not None:
            services.append(svc)
    return services
