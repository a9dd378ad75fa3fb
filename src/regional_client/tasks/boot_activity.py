"""When each server last showed network-boot activity: DHCP from its MAC, boot files fetched
from the address its lease gave it.

The workflow uses it to tell a boot that failed from one that is slow. A server's firmware that
got no DHCP answer, or lost its TFTP transfer, gives up ("no bootable device") and goes quiet;
without this the only sign is the agent timeout (30 min by default, like Ironic's deploy
timeout). With it, a server that started to network-boot, then went quiet and never had its
agent report, is power-cycled after ``workflow.boot_stall_timeout``.

Only this instance's own DHCP, TFTP and HTTP boot feed it, in memory: after a restart, or when
another DHCP server answers, nothing is known and the agent timeout alone applies.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

from regional_client.core.errors import ValidationError
from regional_client.core.ids import normalize_mac

V = TypeVar("V")

MAX_ENTRIES = 100_000
"""Servers remembered (oldest forgotten first); a data center's regional client serves fewer."""


class BootActivity:
    def __init__(self, clock: Callable[[], float] = time.time, max_entries: int = MAX_ENTRIES):
        self.clock = clock
        self.max_entries = max_entries
        self._last: OrderedDict[str, float] = OrderedDict()
        self._mac_of_ip: OrderedDict[str, str] = OrderedDict()

    def seen_mac(self, mac: str) -> None:
        """A DHCP message from ``mac`` (already normalized ``aa:bb:..`` lower case)."""
        self._touch(self._last, mac, self.clock())

    def assigned(self, mac: str, ip: str) -> None:
        """Our DHCP acknowledged ``ip`` for ``mac``: later fetches from ``ip`` are that server's."""
        self._touch(self._mac_of_ip, ip, mac)
        self.seen_mac(mac)

    def seen_ip(self, ip: str) -> None:
        """A boot file (TFTP or HTTP) requested from ``ip``; ignored if no lease of ours has it."""
        mac = self._mac_of_ip.get(ip)
        if mac is not None:
            self.seen_mac(mac)

    def last(self, mac: str) -> float | None:
        """Wall-clock time of the last activity of ``mac`` (any spelling), or None."""
        try:
            return self._last.get(normalize_mac(mac))
        except ValidationError:
            return None

    def _touch(self, d: OrderedDict[str, V], key: str, value: V) -> None:
        d[key] = value
        d.move_to_end(key)
        if len(d) > self.max_entries:
            d.popitem(last=False)
