"""Per-task audit trail in etcd: every audit record that names a serial, in order.

Records (switch commands, DHCP/PXE changes, BMC commands, agent calls, workflow steps) are
queued by the :class:`~regional_client.core.audit.Audit` sink and written in the background under
``/os/{idc}/regional/audit/{sn}/{nanoseconds}-{seq}``, so ``regional-client task show SN --audit``
and ``GET /api/v1/admin/tasks/{sn}/audit`` read the same trail from any instance. Writing never
blocks the caller; if etcd is down, records wait (bounded queue: the oldest are dropped and
counted, the local audit file keeps everything).

The trail is pruned, or it would grow with every install until etcd hits its space quota (2 GB
by default; a full etcd refuses every write, the whole product stops). Like Ironic's node
history (``node_history_max_entries``, ``node_history_minimum_days``) a server keeps at most
``max_records`` records, none older than ``max_age_days``. Key names sort by time, so pruning
is a keys-only scan page by page and one range delete per server; every instance may run it
(deletes are idempotent), a minute after start-up and then every ``prune_interval``
seconds (an hour).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass
from typing import Any

from regional_client.core.errors import ProvisionError
from regional_client.core.logs import get_logger
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys

log = get_logger("audit")


BATCH = 100
"""Records per etcd transaction (etcd allows 128 operations by default)."""


PAGE = 5000
"""Keys read per etcd request while pruning."""

_STAMP = 27
"""Length of the time part of a record key: ``{nanoseconds:020d}-{seq:06d}``."""


@dataclass
class Pruned:
    servers: int = 0
    """Servers whose trail lost records."""
    records: int = 0
    scanned: int = 0


class AuditTrail:
    def __init__(
        self,
        store: EtcdStore,
        keys: Keys,
        max_queue: int = 100_000,
        *,
        max_age_days: float = 90,
        max_records: int = 2000,
        prune_interval: float = 3600.0,
    ) -> None:
        self.store = store
        self.keys = keys
        self.max_age_days = max_age_days
        self.max_records = max_records
        self.prune_interval = prune_interval
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(max_queue)
        self._seq = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._pruner: asyncio.Task[None] | None = None
        self.dropped = 0

    def sink(self, rec: dict[str, Any]) -> None:
        sn = rec.get("sn")
        if not sn:
            return
        try:
            key = f"{self.keys.audit(sn)}{time.time_ns():020d}-{next(self._seq):06d}"
        except ProvisionError:
            return  # not a valid serial: nothing to file it under
        try:
            self._queue.put_nowait((key, rec))
        except asyncio.QueueFull:
            self.dropped += 1

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._writer())
        if self.max_age_days or self.max_records:
            self._pruner = loop.create_task(self._prune_loop())

    async def _writer(self) -> None:
        """Write what is queued, up to ``BATCH`` records per etcd transaction: one put per
        record kept up with ~50 records/s under load while a thousand installs made hundreds."""
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            while True:
                try:
                    await self.store.put_many(dict(batch))
                    break
                except ProvisionError as e:
                    log.warning("audit trail write deferred", action="audit_deferred", error=str(e))
                    await asyncio.sleep(1)
            for _ in batch:
                self._queue.task_done()

    async def stop(self, grace: float = 5.0) -> None:
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), grace)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # ----- pruning --------------------------------------------------------------------------

    async def _prune_loop(self) -> None:
        await asyncio.sleep(min(60.0, self.prune_interval))  # not in the way of start-up
        while True:
            try:
                r = await self.prune()
            except ProvisionError as e:
                log.warning("audit trail not pruned", action="audit_prune_failed", error=str(e))
            else:
                if r.records:
                    log.info(
                        "audit trail pruned",
                        action="audit_pruned",
                        servers=r.servers,
                        records=r.records,
                        scanned=r.scanned,
                    )
            await asyncio.sleep(self.prune_interval)

    async def prune(self, now_ns: int | None = None, page: int = PAGE) -> Pruned:
        """Delete records older than ``max_age_days`` and beyond the newest ``max_records`` of
        each server. Records written meanwhile are newer than anything deleted."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        cutoff = now_ns - int(self.max_age_days * 86400e9) if self.max_age_days else None
        result = Pruned()
        prefix = self.keys.audit_prefix
        current: str | None = None  # the server whose keys are being collected
        names: list[str] = []
        after: str | None = None
        while True:
            batch = await self.store.keys_page(prefix, after, page)
            result.scanned += len(batch)
            for key in batch:
                sn, sep, record = key[len(prefix) :].partition("/")
                if not sn or not sep or not record or "/" in record:
                    continue  # not a record key: never the edge of a range delete
                server_prefix = f"{prefix}{sn}/"
                if server_prefix != current:
                    if current is not None:
                        await self._prune_one(current, names, cutoff, result)
                    current, names = server_prefix, []
                names.append(key)
            if len(batch) < page:
                break
            after = batch[-1]
        if current is not None:
            await self._prune_one(current, names, cutoff, result)
        return result

    async def _prune_one(
        self, server_prefix: str, names: list[str], cutoff: int | None, result: Pruned
    ) -> None:
        drop = max(0, len(names) - self.max_records) if self.max_records else 0
        if cutoff is not None:
            while drop < len(names) and _stamp(names[drop]) < cutoff:
                drop += 1
        if not drop:
            return
        if drop < len(names):
            result.records += await self.store.delete_range(server_prefix, names[drop])
        else:
            result.records += await self.store.delete_prefix(server_prefix)
        result.servers += 1

    async def read(self, sn: str) -> list[dict[str, Any]]:
        kvs, _ = await self.store.get_prefix(self.keys.audit(sn))
        return [kv.value for kv in sorted(kvs, key=lambda kv: kv.key) if kv.valid]


def _stamp(key: str) -> int:
    """The nanosecond timestamp in a record key (records of another shape count as new)."""
    try:
        return int(key[-_STAMP:].partition("-")[0])
    except ValueError:
        return 1 << 63
