"""Reports from servers no task names (``discovered``), bounded so they cannot fill etcd.

Every report (a task's agent's too) first passes :meth:`Discovery.check`: a per-source rate
and the inventory's size. A report for a serial with no task then creates or refreshes its
``discovered`` server record, within ``api.agent.max_discovered`` records, at most once per
``discovered_refresh`` per serial, and within one etcd write budget in bytes for all of them
(``discovered_bytes_per_second``). Nothing here reaches the per-task audit trail in etcd:
unknown serials must not create etcd keys beyond their one record.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from regional_client.config.api import AgentLimits
from regional_client.core.audit import Audit
from regional_client.core.errors import LimitExceeded
from regional_client.core.limits import Buckets, LimitHits, TokenBucket
from regional_client.core.logs import get_logger
from regional_client.model import now_iso
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from regional_client.tasks.cache import Cache

__all__ = ["Discovery", "server_record"]

log = get_logger("agent_api")


class Discovery:
    def __init__(
        self,
        store: EtcdStore,
        keys: Keys,
        cache: Cache,
        audit: Audit,
        limits: AgentLimits,
        hits: LimitHits,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.keys, self.cache, self.audit = store, keys, cache, audit
        self.limits, self.hits, self.clock = limits, hits, clock
        self._reports = Buckets(limits.report_rate, limits.report_burst)
        self._bytes = TokenBucket(
            float(limits.discovered_bytes_per_second), float(limits.discovered_burst_bytes)
        )

    def check(self, hardware: dict[str, Any], ip: str | None) -> int:
        """Per-source rate and inventory size; returns the inventory's size in bytes."""
        source = ip or "-"
        if not self._reports.take(source, self.clock()):
            self.hits.hit("agent_report_rate", source)
            raise LimitExceeded("too many reports from this address", limit="agent_report_rate")
        size = len(json.dumps(hardware, separators=(",", ":"), default=str))
        if size > self.limits.max_hardware_bytes:
            self.hits.hit("agent_hardware_size", source, size=size)
            raise LimitExceeded(
                f"hardware inventory is {size} bytes; at most {self.limits.max_hardware_bytes}",
                limit="agent_hardware_size", status=413,
            )  # fmt: skip
        return size

    async def report(
        self,
        sn: str,
        mac: str,
        hardware: dict[str, Any],
        ip: str | None,
        size: int,
    ) -> dict[str, Any]:
        """An unknown serial enlists as ``discovered``, within the record count, the refresh
        interval and the etcd write budget (so unauthenticated input cannot fill etcd)."""
        source = ip or "-"
        known = self.cache.get_server(sn)  # a server whose task was deleted may enlist again
        if known is None:
            count = sum(1 for s in self.cache.servers.values() if s.state == "discovered")
            if count >= self.limits.max_discovered:
                self.hits.hit("agent_discovered_records", source, count=count)
                raise LimitExceeded(
                    f"{count} discovered servers recorded: no room for another",
                    limit="agent_discovered_records", status=507,
                )  # fmt: skip
        elif known.state == "discovered" and (
            _seconds_since(known.last_seen) < self.limits.discovered_refresh
        ):
            return {"result": "ok", "status": "discovered"}  # recorded recently: no write
        if self.limits.discovered_bytes_per_second and not self._bytes.take(
            self.clock(), float(size + 512)
        ):
            self.hits.hit("agent_discovered_bytes", source)
            raise LimitExceeded("discovery write budget spent; report again later",
                                limit="agent_discovered_bytes")  # fmt: skip
        at = now_iso()
        skey = self.keys.server(sn)
        kv = await self.store.update(
            skey, server_record(sn, mac, hardware, ip, at, "discovered", None), create=True
        )
        self.cache.apply_write(kv, skey)
        # Not in the etcd trail (sn=None): unknown serials must not create etcd keys.
        self.audit.record(f"agent:{sn}", "agent.report", sn, mac=mac, ip=ip, state="discovered")
        log.info("server discovered", action="agent_report", sn=sn, mac=mac, ip=ip or "",
                 state="discovered")  # fmt: skip
        return {"result": "ok", "status": "discovered"}


def server_record(
    sn: str,
    mac: str,
    hardware: dict[str, Any],
    ip: str | None,
    at: str,
    state: str,
    task_id: str | None,
) -> Callable[[dict[str, Any] | None], dict[str, Any]]:
    """The CAS change writing one report into a server record (MACs newest first, at most 16)."""

    def fn(old: dict[str, Any] | None) -> dict[str, Any]:
        rec = old or {"sn": sn, "first_seen": at, "macs": []}
        macs = [m for m in rec.get("macs", []) if m != mac]
        rec["macs"] = [mac, *macs][:16]
        rec["hardware"] = hardware
        rec["last_seen"] = at
        rec["state"] = state
        if ip:
            rec["ip"] = ip
        if task_id is not None:
            rec["task_id"] = task_id
        return rec

    return fn


def _seconds_since(iso: str | None) -> float:
    if not iso:
        return float("inf")
    try:
        then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return float("inf")
    return time.time() - then.timestamp()
