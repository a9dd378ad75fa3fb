"""Address bookkeeping, sans-IO: subnets and pools, static bindings, leases, offers, quarantine.

Addresses are ``int`` here (cheap to compare and to step through a pool); :func:`ip_to_int` /
:func:`int_to_ip` convert. Every method takes ``now`` (seconds since the epoch) instead of reading
a clock, so expiry is tested without sleeping. Mutating methods return the :data:`Change` list the
shell must persist (``("put", lease)`` / ``("delete", mac)``) before it answers the client.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Any, Literal

from regional_client.core.errors import ValidationError
from regional_client.core.ids import normalize_mac

__all__ = [
    "Binding",
    "Change",
    "Lease",
    "LeaseTable",
    "Subnet",
    "int_to_ip",
    "ip_to_int",
    "normalize_mac",
]

_IP_RE = re.compile(r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$")
_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9])?$")


def ip_to_int(ip: str) -> int:
    if not isinstance(ip, str) or not _IP_RE.match(ip):
        raise ValidationError(f"not an IPv4 address: {ip!r}", field="ip")
    a, b, c, d = (int(x) for x in ip.split("."))
    return a << 24 | b << 16 | c << 8 | d


def int_to_ip(n: int) -> str:
    return f"{n >> 24 & 255}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


@dataclass(slots=True)
class Binding:
    """A static MAC → IP binding (``/os/{idc}/dhcp/bindings/{mac}``)."""

    mac: str
    ip: int
    hostname: str | None = None
    boot_file: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "mac": self.mac,
            "ip": int_to_ip(self.ip),
            "hostname": self.hostname,
            "boot_file": self.boot_file,
        }

    @classmethod
    def from_json(cls, d: Any) -> Binding:
        if not isinstance(d, dict):
            raise ValidationError("binding must be a JSON object")
        mac, ip = normalize_mac(d.get("mac", "")), ip_to_int(d.get("ip", ""))
        return cls(mac, ip, check_hostname(d.get("hostname")), check_boot_file(d.get("boot_file")))


def check_hostname(host: Any) -> str | None:
    """None, or a host name (letters, digits, '-', '_', '.'; at most 253 characters)."""
    if host is None:
        return None
    if not isinstance(host, str) or not _HOST_RE.match(host):
        raise ValidationError(
            f"invalid hostname {host!r}: letters, digits, '-', '_' and '.', at most 253 chars",
            field="hostname",
        )
    return host


def check_boot_file(boot: Any) -> str | None:
    """None, or a file name / URL of printable ASCII without spaces (at most 255 bytes)."""
    if boot is None:
        return None
    if (
        not isinstance(boot, str)
        or not 0 < len(boot) <= 255
        or not all(33 <= ord(c) < 127 for c in boot)
    ):
        raise ValidationError(
            "boot_file must be 1-255 printable ASCII characters without spaces", field="boot_file"
        )
    return boot


@dataclass(slots=True)
class Lease:
    """An address given to a MAC until ``expires`` (``/os/{idc}/dhcp/leases/{mac}``)."""

    mac: str
    ip: int
    expires: float
    hostname: str | None = None
    static: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "mac": self.mac,
            "ip": int_to_ip(self.ip),
            "expires_at": round(self.expires, 3),
            "hostname": self.hostname,
            "static": self.static,
        }

    @classmethod
    def from_json(cls, d: Any) -> Lease:
        if not isinstance(d, dict) or not isinstance(d.get("expires_at"), int | float):
            raise ValidationError("lease must be an object with expires_at")
        host = d.get("hostname")
        return cls(
            normalize_mac(d.get("mac", "")),
            ip_to_int(d.get("ip", "")),
            float(d["expires_at"]),
            host if isinstance(host, str) else None,
            bool(d.get("static", False)),
        )


Change = tuple[Literal["put"], Lease] | tuple[Literal["delete"], str]


@dataclass(slots=True)
class Subnet:
    """One served subnet: the local one or a relay's. ``reserved`` are never handed out."""

    network: IPv4Network
    pool_start: int | None = None
    pool_end: int | None = None
    lease_time: float = 3600.0
    reserved: set[int] = field(default_factory=set)
    cursor: int = 0
    all_held: bool = False
    """Every pool address has been held at least once (skip the never-held pass)."""
    exhausted_until: float = 0.0
    net: int = 0
    mask: int = 0
    ident: int = 0
    """Position in the responder's subnet list (used in cache keys)."""
    data: Any = None
    """The responder's per-subnet pre-encoded options."""

    def __post_init__(self) -> None:
        self.net = int(self.network.network_address)
        self.mask = int(self.network.netmask)
        self.reserved |= {self.net, int(self.network.broadcast_address)}
        if self.pool_start is not None:
            self.cursor = self.pool_start

    def contains(self, ip: int) -> bool:
        return ip & self.mask == self.net

    def in_pool(self, ip: int) -> bool:
        return (
            self.pool_start is not None
            and self.pool_start <= ip <= (self.pool_end or 0)
            and ip not in self.reserved
        )

    @property
    def pool_size(self) -> int:
        if self.pool_start is None or self.pool_end is None:
            return 0
        return self.pool_end - self.pool_start + 1


class LeaseTable:
    """Who holds which address. One instance per server; single-threaded (asyncio) use."""

    def __init__(self) -> None:
        self.leases: dict[str, Lease] = {}
        self.by_ip: dict[int, str] = {}
        self.bindings: dict[str, Binding] = {}
        self.bound_ips: dict[int, str] = {}
        self.offers: dict[str, tuple[int, float]] = {}
        self.offered: dict[int, str] = {}
        self.quarantine: dict[int, float] = {}

    # -- bindings ------------------------------------------------------------------------
    def set_binding(self, b: Binding) -> None:
        old = self.bindings.get(b.mac)
        if old is not None and self.bound_ips.get(old.ip) == b.mac:
            del self.bound_ips[old.ip]
        self.bindings[b.mac] = b
        self.bound_ips[b.ip] = b.mac

    def remove_binding(self, mac: str) -> Binding | None:
        b = self.bindings.pop(mac, None)
        if b is not None and self.bound_ips.get(b.ip) == mac:
            del self.bound_ips[b.ip]
        return b

    # -- leases --------------------------------------------------------------------------
    def load_lease(self, lease: Lease) -> None:
        """Add a stored lease; of two leases on one address the later-expiring one wins."""
        other = self.by_ip.get(lease.ip)
        if other is not None and other != lease.mac:
            if self.leases[other].expires >= lease.expires:
                return
            del self.leases[other]
        old = self.leases.get(lease.mac)
        if old is not None and self.by_ip.get(old.ip) == lease.mac:
            del self.by_ip[old.ip]
        self.leases[lease.mac] = lease
        self.by_ip[lease.ip] = lease.mac

    def active_count(self, now: float) -> int:
        return sum(1 for lease in self.leases.values() if lease.expires > now)

    def is_free(self, ip: int, mac: str, now: float) -> bool:
        """True when nobody but ``mac`` holds ``ip`` (binding, lease, offer or quarantine)."""
        owner = self.bound_ips.get(ip)
        if owner is not None and owner != mac:
            return False
        owner = self.by_ip.get(ip)
        if owner is not None and owner != mac and self.leases[owner].expires > now:
            return False
        owner = self.offered.get(ip)
        if owner is not None and owner != mac and self.offers[owner][1] > now:
            return False
        q = self.quarantine.get(ip)
        return q is None or q <= now

    def choose(self, sub: Subnet, mac: str, requested: int | None, now: float) -> int | None:
        """The address to offer ``mac`` in ``sub``: binding, own lease/offer, requested, pool."""
        b = self.bindings.get(mac)
        if b is not None:
            return b.ip if sub.contains(b.ip) else None
        off = self.offers.get(mac)
        if off is not None and off[1] > now and sub.in_pool(off[0]):
            return off[0]
        lease = self.leases.get(mac)
        if lease is not None and sub.in_pool(lease.ip) and self.is_free(lease.ip, mac, now):
            return lease.ip
        if requested is not None and sub.in_pool(requested) and self.is_free(requested, mac, now):
            return requested
        return self._scan(sub, mac, now)

    def _scan(self, sub: Subnet, mac: str, now: float) -> int | None:
        """Next address in the pool nobody ever held; else one whose holder expired.

        Bounded work: once every address has been held, the never-held pass is skipped; after
        a scan finds nothing, the pool counts as exhausted for a second (a DISCOVER flood on a
        full pool costs a dict lookup per packet, not a pool walk).
        """
        if sub.pool_start is None or sub.pool_end is None or now < sub.exhausted_until:
            return None
        start, end, size = sub.pool_start, sub.pool_end, sub.pool_size
        ip = sub.cursor
        by_ip, bound, offered, quar, reserved = (
            self.by_ip, self.bound_ips, self.offered, self.quarantine, sub.reserved,
        )  # fmt: skip
        for _ in range(0 if sub.all_held else size):
            if ip > end:
                ip = start
            if (
                ip not in by_ip
                and ip not in bound
                and ip not in offered
                and ip not in quar
                and ip not in reserved
            ):
                sub.cursor = ip + 1
                return ip
            ip += 1
        sub.all_held = True
        for _ in range(size):  # second pass: reclaim expired leases/offers/quarantine
            if ip > end:
                ip = start
            if ip not in reserved and self.is_free(ip, mac, now):
                sub.cursor = ip + 1
                return ip
            ip += 1
        sub.exhausted_until = now + 1.0
        return None

    def acceptable(self, sub: Subnet, mac: str, ip: int, now: float) -> bool:
        """May ``mac`` be acknowledged for ``ip`` in ``sub``?"""
        if not sub.contains(ip):
            return False
        b = self.bindings.get(mac)
        if b is not None:
            return b.ip == ip
        return sub.in_pool(ip) and self.is_free(ip, mac, now)

    def offer(self, mac: str, ip: int, until: float) -> None:
        old = self.offers.get(mac)
        if old is not None and self.offered.get(old[0]) == mac:
            del self.offered[old[0]]
        self.offers[mac] = (ip, until)
        self.offered[ip] = mac

    def drop_offer(self, mac: str) -> None:
        old = self.offers.pop(mac, None)
        if old is not None and self.offered.get(old[0]) == mac:
            del self.offered[old[0]]

    def commit(
        self, mac: str, ip: int, expires: float, hostname: str | None, static: bool
    ) -> tuple[Lease, list[Change], bool]:
        """Record the lease; returns it, the changes to persist, and whether it is new
        (a new address for this MAC rather than a renewal)."""
        self.drop_offer(mac)
        changes: list[Change] = []
        old = self.leases.get(mac)
        fresh = old is None or old.ip != ip
        if old is not None and old.ip != ip and self.by_ip.get(old.ip) == mac:
            del self.by_ip[old.ip]
        holder = self.by_ip.get(ip)
        if holder is not None and holder != mac:
            del self.leases[holder]
            changes.append(("delete", holder))
        lease = Lease(mac, ip, expires, hostname, static)
        self.leases[mac] = lease
        self.by_ip[ip] = mac
        self.quarantine.pop(ip, None)
        changes.append(("put", lease))
        return lease, changes, fresh

    def release(self, mac: str, ip: int, now: float) -> list[Change]:
        lease = self.leases.get(mac)
        if lease is None or lease.ip != ip or lease.expires <= now:
            return []
        lease.expires = now
        return [("put", lease)]

    def decline(self, mac: str, ip: int, until: float) -> list[Change]:
        """``mac`` found ``ip`` in use: forget the lease and keep the address out for a while."""
        self.drop_offer(mac)
        if mac in self.bindings:
            return []
        self.quarantine[ip] = until
        lease = self.leases.get(mac)
        if lease is None or lease.ip != ip:
            return []
        del self.leases[mac]
        if self.by_ip.get(ip) == mac:
            del self.by_ip[ip]
        return [("delete", mac)]

    def forget(self, mac: str) -> Lease | None:
        """Drop a lease from memory (it was deleted in the store)."""
        lease = self.leases.pop(mac, None)
        if lease is not None and self.by_ip.get(lease.ip) == mac:
            del self.by_ip[lease.ip]
        return lease

    def purge(self, now: float) -> None:
        """Forget offers and quarantine entries that ran out (leases stay: they are reused)."""
        for mac, (_ip, until) in list(self.offers.items()):
            if until <= now:
                self.drop_offer(mac)
        for ip, until in list(self.quarantine.items()):
            if until <= now:
                del self.quarantine[ip]
