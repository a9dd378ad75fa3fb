"""Limits on what the install network may cost us: per-source token buckets, and one way to
report a limit being hit (a metric per limit, a log line per source per minute).

Pure bookkeeping, time passed in (``now``: any monotonic clock in seconds), so tests need no
sleeping. The tables are bounded: a flood from many sources evicts the longest-idle entries
instead of growing without end (an evicted source starts again with a full bucket, which is
the safe direction for a source that has been quiet longest).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from regional_client.core.logs import StructLogger, get_logger
from regional_client.core.metrics import Metrics

__all__ = ["Buckets", "LimitHits", "OncePer", "TokenBucket"]


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up."""

    rate: float
    burst: float
    tokens: float = -1.0
    at: float = 0.0

    def take(self, now: float, cost: float = 1.0) -> bool:
        if self.tokens < 0:
            self.tokens, self.at = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True


class Buckets:
    """One :class:`TokenBucket` per key (a source address, a MAC), at most ``max_keys``."""

    def __init__(self, rate: float, burst: float, max_keys: int = 65536) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._b: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str, now: float, cost: float = 1.0) -> bool:
        if self.rate <= 0:
            return True  # limit off
        b = self._b.get(key)
        if b is None:
            b = self._b[key] = TokenBucket(self.rate, self.burst)
            if len(self._b) > self.max_keys:
                self._b.popitem(last=False)
        else:
            self._b.move_to_end(key)
        return b.take(now, cost)

    def __len__(self) -> int:
        return len(self._b)


class OncePer:
    """True at most once per ``interval`` seconds per key (bounded like :class:`Buckets`)."""

    def __init__(self, interval: float = 60.0, max_keys: int = 65536) -> None:
        self.interval, self.max_keys = interval, max_keys
        self._last: OrderedDict[str, float] = OrderedDict()

    def __call__(self, key: str, now: float) -> bool:
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        if len(self._last) > self.max_keys:
            self._last.popitem(last=False)
        return True


class LimitHits:
    """Count every hit of a named limit (``regional_client_limit_hits_total{limit}``) and log it
    once per source per minute, so a flood neither goes unseen nor floods the log."""

    def __init__(
        self,
        metrics: Metrics,
        log: StructLogger | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idc = metrics.idc
        self.counter = metrics.counter(
            "regional_client_limit_hits_total",
            "Requests refused or cut short by an input limit",
            ["limit"],
        )
        self.log = log or get_logger("limits")
        self.clock = clock
        self._once = OncePer(60.0)

    def hit(self, limit: str, source: str, **fields: object) -> None:
        self.counter.labels(self.idc, limit).inc()
        if self._once(f"{limit}|{source}", self.clock()):
            self.log.warning(
                f"limit {limit} reached", action="limit_hit", limit=limit, ip=source, **fields
            )
