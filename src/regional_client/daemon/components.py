"""Building the optional components from their config sections, with typed dependencies.

Each ``build_*`` takes exactly what its service needs and returns it (None when its section is
disabled); :func:`build_services` calls them in start order, makes each admin router with the
service it serves and collects the health checks into one frozen :class:`Services`. The
workflow comes last because it drives all the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fastapi import APIRouter

from regional_client.api import admin
from regional_client.config import Config
from regional_client.config.secretbox import SecretBox
from regional_client.config.tftp import TftpConfig
from regional_client.core.audit import Audit
from regional_client.core.logs import get_logger
from regional_client.core.metrics import Metrics
from regional_client.daemon.services import Core, HealthCheck, Services
from regional_client.dhcp.service import DhcpService
from regional_client.drivers.bmc.controller import BmcController
from regional_client.drivers.switch.hostkeys import EtcdHostKeys, HostKeyPins
from regional_client.drivers.switch.manager import SwitchManager
from regional_client.pxe.generator import PxeGenerator
from regional_client.pxe.service import PxeService
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from regional_client.tasks.boot_activity import BootActivity
from regional_client.tftp.server import TftpServer
from regional_client.workflow.devices import Devices
from regional_client.workflow.engine import Workflow


def build_bmc(
    config: Config, metrics: Metrics, audit: Audit, box: SecretBox
) -> BmcController | None:
    if not config.bmc.enabled:
        return None
    return BmcController(config.bmc, metrics, audit, secrets=box)


def build_switch(
    config: Config,
    metrics: Metrics,
    audit: Audit,
    decrypt: Callable[[str], str],
    host_keys: HostKeyPins | None = None,
) -> SwitchManager | None:
    cfg = config.switch
    if not cfg.enabled or not cfg.switches():
        return None
    if cfg.host_keys == "off":
        get_logger("switch").warning("switch SSH host keys are not checked (switch.host_keys: "
                                     "off)", action="host_keys_off")  # fmt: skip
    return SwitchManager(cfg, audit=audit, metrics=metrics, decrypt=decrypt, host_keys=host_keys)


def build_dhcp(core: Core) -> DhcpService | None:
    """The service loads its leases at ``start()``: the store must be connected by then."""
    cfg = core.config
    if not cfg.dhcp.enabled:
        return None
    svc = DhcpService(
        cfg.dhcp, core.store, core.keys, core.metrics, core.audit, regional_url=cfg.regional_url
    )
    svc.boot_activity = core.boot_activity
    return svc


def build_tftp(
    cfg: TftpConfig, metrics: Metrics, activity: BootActivity | None = None
) -> TftpServer | None:
    if not cfg.enabled:
        return None
    server = TftpServer(cfg, metrics=metrics, log=get_logger("tftp"))
    if activity is not None:
        server.on_activity = activity.seen_ip
    return server


def build_pxe(
    config: Config, store: EtcdStore | None = None, keys: Keys | None = None
) -> PxeService | None:
    """PXE/GRUB/iPXE configs live in the TFTP root: only when TFTP or HTTP boot serves them.
    ``start()`` rebuilds every per-MAC config from the tasks in etcd (none without a store)."""
    if not (config.tftp.enabled or config.http_boot.enabled):
        return None
    return PxeService(PxeGenerator.from_config(config), store=store, keys=keys)


def build_workflow(core: Core, devices: Devices) -> Workflow | None:
    if not core.config.workflow.enabled:
        return None
    return Workflow(
        config=core.config.workflow,
        store=core.store,
        keys=core.keys,
        cache=core.cache,
        devices=devices,
        metrics=core.metrics,
        audit=core.audit,
        instance_id=core.instance_id,
        boot_activity=core.boot_activity,
    )


def tftp_health(server: TftpServer) -> HealthCheck:
    def check() -> dict[str, Any]:
        addr = server.address
        return {
            "ok": server.running,
            "listen": f"{addr[0]}:{addr[1]}" if addr else None,
            "active_transfers": len(server.transfers),
        }

    return check


def pxe_health(svc: PxeService) -> HealthCheck:
    def check() -> dict[str, Any]:
        last = svc.last_sync
        return {
            "ok": last is None or not last.failed,
            "configs": len(svc.generator.macs()),
            "default_action": svc.generator.config.default_action,
            "sync_failed": sorted(last.failed) if last else [],
        }

    return check


def component_routers(core: Core, s: Services) -> tuple[list[APIRouter], list[APIRouter]]:
    """Admin routers (under /api/v1) and root routers (HTTP boot) for what is enabled."""
    from regional_client.dhcp import api as dhcp_api
    from regional_client.drivers.bmc import api as bmc_api
    from regional_client.drivers.switch import api as switch_api
    from regional_client.httpboot.router import router as http_boot
    from regional_client.pxe import api as pxe_api
    from regional_client.tftp import api as tftp_api

    cfg, auth, audit = core.config, core.admin, core.audit
    routers = [admin.router(core.cache, core.trail, auth, audit)]
    if s.bmc is not None:
        routers.append(bmc_api.router(s.bmc, bmc_api.cache_lookup(core.cache), auth, audit))
    if s.switch is not None:
        routers.append(switch_api.router(s.switch, auth, audit))
    if s.dhcp is not None:
        routers.append(dhcp_api.router(s.dhcp, auth, audit))
    routers.append(tftp_api.router(cfg.tftp.root_dir, s.tftp, auth, audit))
    if s.pxe is not None:
        routers.append(pxe_api.router(s.pxe, auth, audit))
    root: list[APIRouter] = []
    if cfg.http_boot.enabled:
        ipxe_dir = "ipxe"
        if s.pxe is not None:
            ipxe_dir = str(s.pxe.generator.ipxe_dir.relative_to(s.pxe.generator.root))
        root.append(http_boot(cfg.tftp.root_dir, core.metrics, prefix=cfg.http_boot.path_prefix,
                              ipxe_dir=ipxe_dir, activity=core.boot_activity))  # fmt: skip
    return routers, root


def build_services(core: Core) -> Services:
    cfg = core.config
    bmc = build_bmc(cfg, core.metrics, core.audit, core.secrets)
    pins = EtcdHostKeys(core.store, core.keys.regional_prefix + "switch_host_keys/", core.audit)
    switch = build_switch(cfg, core.metrics, core.audit, core.secrets.decrypt, pins)
    dhcp = build_dhcp(core)
    tftp = build_tftp(cfg.tftp, core.metrics, core.boot_activity)
    pxe = build_pxe(cfg, core.store, core.keys)
    workflow = build_workflow(core, Devices(switch=switch, pxe=pxe, dhcp=dhcp, bmc=bmc))
    checks: dict[str, HealthCheck] = {}
    if dhcp is not None:
        checks["dhcp"] = dhcp.health
    if tftp is not None:
        checks["tftp"] = tftp_health(tftp)
    if pxe is not None:
        checks["pxe"] = pxe_health(pxe)
    if workflow is not None:
        wf = workflow
        checks["workflow"] = lambda: {"ok": True, "running": len(wf.running())}
    s = Services(core, bmc, switch, dhcp, tftp, pxe, workflow, health_checks=checks)
    routers, root = component_routers(core, s)
    return replace(s, routers=tuple(routers), root_routers=tuple(root))
