"""Event-loop lag: how late a timer fires. Everything this process serves (agent API, DHCP,
TFTP, etcd calls, device sessions) shares one loop; lag there is latency for all of it.

A task sleeps ``interval`` seconds at a time and records how much later than asked it woke, in
``regional_client_event_loop_lag_seconds`` (histogram) and the worst lag seen in the last
minute (health).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time

from regional_client.core.metrics import Metrics

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LoopMonitor:
    def __init__(self, metrics: Metrics, interval: float = 0.5) -> None:
        self.interval = interval
        self._hist = metrics.histogram(
            "regional_client_event_loop_lag_seconds",
            "How much later than due the event loop ran a timer",
            buckets=BUCKETS,
        ).labels(idc=metrics.idc)
        self._recent: collections.deque[tuple[float, float]] = collections.deque()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def worst_last_minute(self) -> float:
        cutoff = time.monotonic() - 60
        return max((lag for at, lag in self._recent if at >= cutoff), default=0.0)

    async def _run(self) -> None:
        while True:
            due = time.monotonic() + self.interval
            await asyncio.sleep(self.interval)
            now = time.monotonic()
            lag = max(0.0, now - due)
            self._hist.observe(lag)
            self._recent.append((now, lag))
            while self._recent and self._recent[0][0] < now - 60:
                self._recent.popleft()
