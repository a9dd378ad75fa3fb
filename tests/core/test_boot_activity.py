"""Boot activity: what DHCP, TFTP and HTTP boot tell the workflow about a server's boot
(the workflow test with a boot that stalls after DHCP shows it end to end)."""

from __future__ import annotations

from regional_client.tasks.boot_activity import BootActivity


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_mac_ip_attribution_and_bounds() -> None:
    clock = Clock()
    a = BootActivity(clock=clock, max_entries=3)
    assert a.last("52:54:00:00:00:01") is None and a.last("not a mac") is None
    a.seen_mac("52:54:00:00:00:01")
    assert a.last("52-54-00-00-00-01") == 1000.0  # any spelling of the MAC
    clock.now = 1010.0
    a.seen_ip("127.100.0.5")  # no lease of ours has this address: nobody's activity
    assert a.last("52:54:00:00:00:01") == 1000.0
    a.assigned("52:54:00:00:00:01", "127.100.0.5")
    clock.now = 1020.0
    a.seen_ip("127.100.0.5")  # a boot file fetched from its leased address
    assert a.last("52:54:00:00:00:01") == 1020.0
    for i in range(2, 6):  # bounded: the oldest are forgotten
        a.seen_mac(f"52:54:00:00:00:0{i}")
    assert a.last("52:54:00:00:00:01") is None and a.last("52:54:00:00:00:05") == 1020.0
