"""Progress coalescing: agents may report often; etcd sees at most one write per task per interval.

The newest report per serial wins. A background loop flushes dirty serials every ``interval``
seconds with a CAS update of ``task.progress``; :meth:`flush` writes one serial at once (used
before operationComplete) and :meth:`stop` flushes everything (shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from regional_client.core.errors import NotFound, ProvisionError
from regional_client.core.logs import get_logger

log = get_logger("progress")

Writer = Callable[[str, dict[str, Any]], Awaitable[None]]
BatchWriter = Callable[[list[tuple[str, dict[str, Any]]]], Awaitable[list[str]]]
"""Writes a batch in one go; returns the serials it could not write (to retry one by one)."""


class ProgressCoalescer:
    def __init__(
        self,
        write: Writer,
        interval: float = 1.0,
        concurrency: int = 16,
        write_batch: BatchWriter | None = None,
        batch_size: int = 64,
    ) -> None:
        self._write = write
        self._write_batch = write_batch
        self.batch_size = batch_size
        self.interval = interval
        self._pending: dict[str, dict[str, Any]] = {}
        self._sem = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task[None] | None = None
        self.submitted = 0
        self.written = 0

    def submit(self, sn: str, progress: dict[str, Any]) -> None:
        self._pending[sn] = progress
        self.submitted += 1

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush_all()

    async def flush_all(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        items = list(batch.items())
        if self._write_batch is None:
            await asyncio.gather(*(self._flush_one(sn, p) for sn, p in items))
            return
        chunks = [items[i : i + self.batch_size] for i in range(0, len(items), self.batch_size)]
        await asyncio.gather(*(self._flush_chunk(chunk) for chunk in chunks))

    async def _flush_chunk(self, chunk: list[tuple[str, dict[str, Any]]]) -> None:
        assert self._write_batch is not None
        async with self._sem:
            try:
                left = set(await self._write_batch(chunk))
            except ProvisionError as e:
                log.warning("progress batch not written", action="progress_deferred", error=str(e))
                left = {sn for sn, _ in chunk}
            self.written += len(chunk) - len(left)
        await asyncio.gather(*(self._flush_one(sn, p) for sn, p in chunk if sn in left))

    async def flush(self, sn: str) -> None:
        p = self._pending.pop(sn, None)
        if p is not None:
            await self._flush_one(sn, p)

    async def _flush_one(self, sn: str, progress: dict[str, Any]) -> None:
        async with self._sem:
            try:
                await self._write(sn, progress)
                self.written += 1
            except NotFound:
                pass  # task deleted meanwhile: nothing to show progress on
            except ProvisionError as e:
                # etcd unavailable: keep the newest value for the next round unless superseded.
                self._pending.setdefault(sn, progress)
                log.warning("progress not written", action="progress_deferred", sn=sn, error=str(e))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush_all()
