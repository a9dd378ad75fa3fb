"""Instance identity and liveness in etcd (``/os/{idc}/regional/instances/{id}``).

The id is kept in ``<state_dir>/instance-id`` so a restarted process is the same instance and
resumes the tasks it owns. The heartbeat key is attached to a kept-alive lease: when a process
dies its key expires after ``ttl`` seconds and other instances may adopt its tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from pathlib import Path
from typing import Any

from regional_client.core.errors import ProvisionError
from regional_client.core.logs import get_logger
from regional_client.model import now_iso
from regional_client.store.etcd import EtcdStore, KeptLease
from regional_client.store.keys import Keys

log = get_logger("heartbeat")


def load_instance_id(state_dir: Path, idc: str) -> str:
    path = Path(state_dir) / "instance-id"
    try:
        existing = path.read_text().strip()
        if existing:
            return existing
    except OSError:
        pass
    host = socket.gethostname().split(".")[0] or "host"
    new = f"{idc}-{host}-{uuid.uuid4().hex[:6]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new + "\n")
    return new


class Heartbeat:
    def __init__(self, store: EtcdStore, keys: Keys, instance_id: str, ttl: int = 10) -> None:
        self.store = store
        self.key = keys.instance(instance_id)
        self.instance_id = instance_id
        self.ttl = ttl
        self._lease: KeptLease | None = None
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()

    async def start(self) -> None:
        await self._register()
        self._task = asyncio.get_running_loop().create_task(self._guard())

    async def _register(self) -> None:
        self._lost.clear()
        self._lease = await self.store.lease(self.ttl, on_lost=self._lost.set)
        info: dict[str, Any] = {"instance": self.instance_id, "since": now_iso(),
                                "host": socket.gethostname()}  # fmt: skip
        await self.store.put(self.key, info, lease=self._lease)

    async def _guard(self) -> None:
        """Re-register when the lease was lost (etcd outage longer than the TTL)."""
        while True:
            await self._lost.wait()
            try:
                await self._register()
                log.warning("heartbeat re-registered", action="heartbeat_renew")
            except ProvisionError:
                await asyncio.sleep(1)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._lease is not None:
            await self._lease.revoke()
