"""The PXE component as a service: defaults and per-task configs rebuilt from etcd at start.

:class:`PxeService` owns a :class:`~regional_client.pxe.generator.PxeGenerator` and offers async
wrappers (file writes and fsyncs run in a worker thread, off the event loop). The workflow calls
``await rt.services["pxe"].generate(task)`` / ``remove(mac)``; the admin API uses ``get``/``list``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from regional_client.core.logs import StructLogger, get_logger
from regional_client.pxe.generator import PxeGenerator, SyncResult
from regional_client.pxe.spec import BootSpec
from regional_client.store.keys import Keys

__all__ = ["PxeService", "wants_pxe"]


def wants_pxe(task: Mapping[str, Any]) -> bool:
    """True while a task should have boot configs: installing and not yet cleaned up."""
    if task.get("status") != "installing":
        return False
    for step in task.get("steps") or []:
        if isinstance(step, Mapping) and step.get("name") == "cleanup":
            return step.get("status") not in ("running", "done")
    return True


class PxeService:
    def __init__(
        self,
        generator: PxeGenerator,
        store: Any = None,
        keys: Keys | None = None,
        log: StructLogger | None = None,
    ) -> None:
        self.generator = generator
        self.store = store
        self.keys = keys
        self.log = log or get_logger("pxe")
        self.last_sync: SyncResult | None = None

    async def start(self) -> None:
        """Write the defaults, then make per-MAC configs match the tasks in etcd."""
        if self.store is None or self.keys is None:
            await asyncio.to_thread(self.generator.write_defaults)
            return
        await self.resync()

    async def stop(self) -> None:
        return None

    async def resync(self) -> SyncResult:
        assert self.store is not None and self.keys is not None
        kvs, _rev = await self.store.get_prefix(self.keys.machines_prefix)
        tasks = [
            kv.value
            for kv in kvs
            if kv.key.endswith("/task") and isinstance(kv.value, Mapping) and wants_pxe(kv.value)
        ]
        self.last_sync = await self.sync(tasks)
        return self.last_sync

    async def generate(self, task: BootSpec | Mapping[str, Any]) -> list[Path]:
        return await asyncio.to_thread(self.generator.generate, task)

    async def remove(self, mac: str) -> list[Path]:
        return await asyncio.to_thread(self.generator.remove, mac)

    async def get(self, mac: str, reveal: bool = False) -> dict[str, Any]:
        return await asyncio.to_thread(self.generator.get, mac, reveal)

    async def list(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.generator.list)

    async def sync(self, tasks: Iterable[BootSpec | Mapping[str, Any]]) -> SyncResult:
        return await asyncio.to_thread(self.generator.sync, list(tasks))
