"""The running instance: configuration, store, cache, metrics, audit and component services.

Components are services with ``async start()`` / ``async stop()``; they receive what they need
(their config section, the store, metrics, audit) explicitly, never a global. ``Runtime`` only
holds them so that API routes can reach them (``request.app.state.runtime``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, overload

from fastapi import APIRouter

from regional_client.config import Config
from regional_client.core.audit import Audit
from regional_client.core.loop_monitor import LoopMonitor
from regional_client.core.metrics import Metrics
from regional_client.store.keys import Keys
from regional_client.tasks.boot_activity import BootActivity

HealthCheck = Callable[[], Awaitable[dict[str, Any]] | dict[str, Any]]


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Runtime:
    """Holds the shared objects of one regional client instance."""

    def __init__(self, config: Config, metrics: Metrics | None = None, audit: Audit | None = None):
        self.config = config
        self.instance_id = f"{config.idc}-{uuid.uuid4().hex[:8]}"
        self.started = time.time()
        self.keys = Keys(config.idc)
        self.metrics = metrics or Metrics(config.idc)
        self.loop_monitor: LoopMonitor | None = None
        self.audit = audit or Audit(None, config.idc)
        self.store: Any = None
        self.cache: Any = None
        self.agent: Any = None
        self.trail: Any = None
        self.boot_activity = BootActivity()
        """Last network-boot activity per MAC (DHCP, TFTP, HTTP boot feed it; the workflow
        reads it)."""
        self.services: dict[str, Any] = {}
        self.routers: list[APIRouter] = []
        self.root_routers: list[APIRouter] = []
        """Routers outside /api/v1 (HTTP boot's /boot/...)."""
        self.health_checks: dict[str, HealthCheck] = {}
        self.decryptor: Callable[[str], str] | None = None
        self._tasks_gauge = self.metrics.gauge(
            "regional_client_tasks_total", "Tasks of this IDC by status", ["status"]
        )
        self._etcd_writes = self.metrics.gauge(
            "regional_client_etcd_key_writes", "Keys written to etcd by this process since start"
        )

    @overload
    def decrypt(self, value: str) -> str: ...
    @overload
    def decrypt(self, value: None) -> None: ...
    def decrypt(self, value: str | None) -> str | None:
        """Clear text of a configured secret (``enc:...`` values need the secrets key)."""
        if value is None or not value.startswith("enc:"):
            return value
        if self.decryptor is None:
            from regional_client.core.errors import ConfigError

            raise ConfigError("an enc: secret is configured but no secrets key is available")
        return self.decryptor(value)

    def refresh_gauges(self) -> None:
        if self.store is not None:
            self._etcd_writes.labels(self.metrics.idc).set(self.store.writes)
        if self.cache is not None:
            for status, n in self.cache.counts().items():
                self._tasks_gauge.labels(self.metrics.idc, status).set(n)

    async def health(self) -> dict[str, Any]:
        """etcd reachability and watch lag, uptime, and every component's own check."""
        body: dict[str, Any] = {
            "status": "ok",
            "idc": self.config.idc,
            "instance": self.instance_id,
            "uptime_seconds": round(time.time() - self.started, 1),
        }
        if self.loop_monitor is not None:
            body["event_loop_lag_max_seconds"] = round(self.loop_monitor.worst_last_minute(), 3)
        etcd: dict[str, Any] = {"reachable": False}
        if self.store is not None:
            try:
                newest = max(
                    await self.store.latest_mod_revision(self.keys.machines_prefix),
                    await self.store.latest_mod_revision(self.keys.servers_prefix),
                )
                applied = self.cache.revision if self.cache else 0
                etcd = {
                    "reachable": True,
                    "revision": await self.store.revision(),
                    "cache_revision": applied,
                    "revision_lag": max(0, newest - applied),
                }
            except Exception as e:
                etcd = {"reachable": False, "error": str(e)[:300]}
        body["etcd"] = etcd
        if not etcd["reachable"]:
            body["status"] = "down"
        for name, check in self.health_checks.items():
            try:
                res = check()
                if hasattr(res, "__await__"):
                    res = await res  # type: ignore[misc]
            except Exception as e:
                res = {"ok": False, "error": str(e)[:300]}
            body[name] = res
            if not res.get("ok", True) and body["status"] == "ok":
                body["status"] = "degraded"
        return body
