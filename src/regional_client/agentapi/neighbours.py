"""The MAC behind a caller's IPv4 address, from the kernel's neighbour (ARP) table.

An agent on a directly attached install segment reaches us without a router, so the kernel
learnt its MAC when it answered our ARP (or sent its own): ``/proc/net/arp`` then says which
MAC owns the address a request came from. An agent token is bound to the MAC it was issued
to; a caller whose address now resolves to another MAC (someone who took over the address, or
poisoned our ARP cache) is refused. Relayed or routed callers have no entry (the router's MAC
would be there only for the router's own address): for them only the address is checked.

Read at most every ``ttl`` seconds (the table changes slowly; a request must not cost a file
read each time). The file is the namespace's own (``/proc/net`` follows the process).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["NeighbourTable", "parse_arp"]

_COMPLETE = 0x2
_ZERO = "00:00:00:00:00:00"


def parse_arp(text: str) -> dict[str, str]:
    """``/proc/net/arp`` text → {ip: mac} for complete entries."""
    out: dict[str, str] = {}
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 4:
            continue
        try:
            flags = int(cols[2], 16)
        except ValueError:
            continue
        mac = cols[3].lower()
        if flags & _COMPLETE and mac != _ZERO:
            out[cols[0]] = mac
    return out


class NeighbourTable:
    def __init__(
        self,
        path: Path = Path("/proc/net/arp"),
        ttl: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path, self.ttl, self.clock = path, ttl, clock
        self._table: dict[str, str] = {}
        self._read_at = float("-inf")

    def mac_of(self, ip: str) -> str | None:
        now = self.clock()
        if now - self._read_at >= self.ttl:
            try:
                self._table = parse_arp(self.path.read_text(encoding="ascii", errors="replace"))
            except OSError:
                self._table = {}
            self._read_at = now
        return self._table.get(ip)
