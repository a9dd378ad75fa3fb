"""What a running instance is made of, typed and frozen once built.

:class:`Core` is what the server builds before any optional component (in this order: secret box,
etcd store, audit trail, cache, agent service); :class:`Services` adds the components that the
config enables. Component builders (:mod:`.components`) take the typed pieces they need, never
the whole object; API routers receive their dependencies when they are made.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import APIRouter

from regional_client.agentapi.service import AgentService
from regional_client.api.auth import AdminAuth
from regional_client.config import Config
from regional_client.config.secretbox import SecretBox
from regional_client.core.audit import Audit
from regional_client.core.loop_monitor import LoopMonitor
from regional_client.core.metrics import Metrics
from regional_client.dhcp.service import DhcpService
from regional_client.drivers.bmc.controller import BmcController
from regional_client.drivers.switch.manager import SwitchManager
from regional_client.pxe.service import PxeService
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from regional_client.tasks.audit_trail import AuditTrail
from regional_client.tasks.boot_activity import BootActivity
from regional_client.tasks.cache import Cache
from regional_client.tftp.server import TftpServer
from regional_client.workflow.engine import Workflow

HealthCheck = Callable[[], Awaitable[dict[str, Any]] | dict[str, Any]]


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class Core:
    """Always present: what every component and the APIs may depend on."""

    config: Config
    instance_id: str
    keys: Keys
    metrics: Metrics
    audit: Audit
    secrets: SecretBox
    store: EtcdStore
    cache: Cache
    agent: AgentService
    trail: AuditTrail
    loop_monitor: LoopMonitor
    admin: AdminAuth
    boot_activity: BootActivity = field(default_factory=BootActivity)
    """Last network-boot activity per MAC (DHCP, TFTP, HTTP boot feed it; the workflow reads
    it)."""
    started: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Services:
    """The core plus the components the config enabled (None: disabled)."""

    core: Core
    bmc: BmcController | None = None
    switch: SwitchManager | None = None
    dhcp: DhcpService | None = None
    tftp: TftpServer | None = None
    pxe: PxeService | None = None
    workflow: Workflow | None = None
    routers: tuple[APIRouter, ...] = ()
    """Admin routers under ``/api/v1``."""
    root_routers: tuple[APIRouter, ...] = ()
    """Routers outside ``/api/v1`` (HTTP boot's ``/boot/...``)."""
    health_checks: Mapping[str, HealthCheck] = field(default_factory=dict)

    def in_start_order(self) -> list[Service]:
        """Components in the order they start (the workflow last: it drives the others)."""
        parts = (self.bmc, self.switch, self.dhcp, self.tftp, self.pxe, self.workflow)
        return [p for p in parts if p is not None]
