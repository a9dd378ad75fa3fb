"""``GET health`` and the gauges refreshed before each ``GET metrics``.

Health: etcd reachability, watch lag and alarms, uptime, event-loop lag, and every component's
own check; ``down`` when etcd is unreachable (503), ``degraded`` when etcd raised an alarm
(``NOSPACE``: the quota is full, every write fails) or a component check fails.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from regional_client.daemon.services import Core, HealthCheck


class Health:
    def __init__(self, core: Core, checks: Mapping[str, HealthCheck]) -> None:
        self.core = core
        self.checks = dict(checks)
        m = core.metrics
        self._tasks_gauge = m.gauge(
            "regional_client_tasks_total", "Tasks of this IDC by status", ["status"]
        )
        self._etcd_writes = m.gauge(
            "regional_client_etcd_key_writes", "Keys written to etcd by this process since start"
        )

    def refresh_gauges(self) -> None:
        c = self.core
        self._etcd_writes.labels(c.metrics.idc).set(c.store.writes)
        for status, n in c.cache.counts().items():
            self._tasks_gauge.labels(c.metrics.idc, status).set(n)

    async def _etcd(self) -> dict[str, Any]:
        c = self.core
        try:
            newest = max(
                await c.store.latest_mod_revision(c.keys.machines_prefix),
                await c.store.latest_mod_revision(c.keys.servers_prefix),
            )
            applied = c.cache.revision
            out: dict[str, Any] = {
                "reachable": True,
                "revision": await c.store.revision(c.keys.root),
                "cache_revision": applied,
                "revision_lag": max(0, newest - applied),
            }
        except Exception as e:
            return {"reachable": False, "error": str(e)[:300]}
        try:
            out["alarms"] = await c.store.alarms()
        except Exception as e:  # e.g. an etcd user without the right to list alarms
            out["alarms"], out["alarms_error"] = None, str(e)[:300]
        return out

    async def report(self) -> dict[str, Any]:
        c = self.core
        body: dict[str, Any] = {
            "status": "ok",
            "idc": c.config.idc,
            "instance": c.instance_id,
            "uptime_seconds": round(time.time() - c.started, 1),
            "event_loop_lag_max_seconds": round(c.loop_monitor.worst_last_minute(), 3),
        }
        body["etcd"] = await self._etcd()
        if not body["etcd"]["reachable"]:
            body["status"] = "down"
        elif body["etcd"].get("alarms"):
            body["status"] = "degraded"  # NOSPACE: every write fails until an operator acts
        for name, check in self.checks.items():
            try:
                res = check()
                if not isinstance(res, dict):
                    res = await res
            except Exception as e:
                res = {"ok": False, "error": str(e)[:300]}
            body[name] = res
            if not res.get("ok", True) and body["status"] == "ok":
                body["status"] = "degraded"
        return body
