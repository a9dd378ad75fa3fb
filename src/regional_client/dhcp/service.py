"""``DhcpService``: the DHCP component — sockets, responder, etcd persistence, bindings API.

The workflow calls::

    svc = services.dhcp
    await svc.add_binding("aa:bb:cc:dd:ee:ff", "10.0.0.50", hostname="node7", boot_file=None,
                          actor="workflow", sn="SN1")   # actor/sn: optional, audited when given
    await svc.remove_binding("aa:bb:cc:dd:ee:ff", actor="workflow", sn="SN1")
    svc.get_lease(mac); svc.leases(); svc.bindings()

Acknowledgements wait for their lease write (group commit: while one batch is being written to
etcd the next one collects), so a crash or restart never hands out an address twice. Offers are
held only in memory. Bindings are followed with an etcd watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from typing import Any

from regional_client.config.dhcp import DhcpConfig
from regional_client.core.audit import Audit
from regional_client.core.errors import ConfigError, Conflict, ProvisionError, ValidationError
from regional_client.core.ids import normalize_mac
from regional_client.core.logs import StructLogger, get_logger
from regional_client.core.metrics import Metrics
from regional_client.dhcp.leases import Binding, LeaseTable, int_to_ip
from regional_client.dhcp.packet import MessageType, peek_mac, peek_type
from regional_client.dhcp.responder import DhcpState, Outcome, handle
from regional_client.dhcp.server import DhcpEndpoint, interface_address, open_socket
from regional_client.dhcp.store import DhcpStore
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from regional_client.tasks.boot_activity import BootActivity

__all__ = ["DhcpService"]

SocketFactory = Callable[[str, int, str | None], socket.socket]
_TYPE_NAMES = {int(m): m.name.lower() for m in MessageType}


class DhcpService:
    """The DHCP server of one instance (see the module docstring for the public API)."""

    def __init__(
        self,
        config: DhcpConfig,
        store: EtcdStore,
        keys: Keys,
        metrics: Metrics,
        audit: Audit | None = None,
        log: StructLogger | None = None,
        *,
        regional_url: str = "",
        clock: Callable[[], float] = time.time,
        socket_factory: SocketFactory = open_socket,
    ) -> None:
        self.cfg = config
        self.dstore = DhcpStore(store, keys)
        self.metrics = metrics
        self.audit = audit
        self.log = log or get_logger("dhcp")
        self.regional_url = regional_url
        self.clock = clock
        self.socket_factory = socket_factory
        self.table = LeaseTable()
        sid = config.server_id or config.tftp_server
        self.state = DhcpState(config, str(sid or "0.0.0.0"), regional_url, self.table)
        self.endpoints: list[DhcpEndpoint] = []
        self._queue: list[tuple[Outcome, DhcpEndpoint]] = []
        self._writing = False
        self._flush_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.invalid_records: list[str] = []
        self.boot_activity: BootActivity | None = None
        """Told of every parseable client message and every acknowledged address."""
        self._init_metrics()

    # ----- metrics ----------------------------------------------------------------------------

    def _init_metrics(self) -> None:
        m, idc = self.metrics, self.metrics.idc
        gauge = m.gauge("regional_client_dhcp_leases_total", "DHCP leases currently held")
        gauge.labels(idc).set_function(lambda: self.table.active_count(self.clock()))
        self._packets = m.counter(
            "regional_client_dhcp_packets_total",
            "DHCP packets by direction (in/out) and message type",
            ["direction", "type"],
        )
        self._drops = m.counter(
            "regional_client_dhcp_drops_total", "DHCP requests not answered, by reason", ["reason"]
        )
        self._pending_counts: dict[tuple[str, ...], int] = {}

    def _count(self, *key: str) -> None:
        """Count one event; plain ints on the hot path, pushed to Prometheus by
        :meth:`flush_metrics` (every second, and at stop)."""
        c = self._pending_counts
        c[key] = c.get(key, 0) + 1

    def flush_metrics(self) -> None:
        counts, self._pending_counts = self._pending_counts, {}
        idc = self.metrics.idc
        for (family, *labels), n in counts.items():
            fam = self._drops if family == "drop" else self._packets
            fam.labels(idc, *labels).inc(n)

    # ----- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        loaded = await self.dstore.load()
        for lease in loaded.leases:
            self.table.load_lease(lease)
        for b in loaded.bindings:
            self.table.set_binding(b)
        if loaded.invalid:
            self.invalid_records = loaded.invalid
            self.log.warning(
                "ignoring DHCP records that do not parse",
                action="dhcp_invalid_records",
                keys=loaded.invalid[:20],
            )
        await self._open_sockets()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._watch(loaded.revision + 1)))
        self._tasks.append(loop.create_task(self._housekeeping()))
        self.log.info(
            "DHCP server started",
            action="dhcp_started",
            interface=self.cfg.interface,
            port=self.cfg.port,
            leases=len(loaded.leases),
            bindings=len(loaded.bindings),
            subnets=[str(s.network) for s in self.state.subnets],
        )

    async def _open_sockets(self) -> None:
        loop = asyncio.get_running_loop()
        cfg = self.cfg
        socks: list[tuple[socket.socket, bool]] = []
        try:
            if cfg.interface is not None:
                socks.append((self.socket_factory("0.0.0.0", cfg.port, cfg.interface), True))
            if cfg.relay_subnets:
                socks.append((self.socket_factory(str(cfg.listen_addr), cfg.port, None), False))
        except OSError as e:
            for s, _ in socks:
                s.close()
            raise ConfigError(
                f"dhcp: cannot open UDP port {cfg.port} on {cfg.interface or cfg.listen_addr}: {e}"
            ) from None
        if cfg.server_id is None and cfg.tftp_server is None:
            addr = interface_address(socks[0][0], cfg.interface) if cfg.interface else None
            if addr is None:
                for s, _ in socks:
                    s.close()
                raise ConfigError("dhcp.server_id: not set and the interface has no IPv4 address")
            self.state = DhcpState(cfg, addr, self.regional_url, self.table)
        for sock, local in socks:
            ep = DhcpEndpoint(
                sock,
                self._on_datagram,
                local,
                cfg.interface if local else None,
                lambda name: self._count("drop", f"socket_{name}"),
            )
            ep.start(loop)
            self.endpoints.append(ep)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self._tasks:  # bounded: a watch stuck in an etcd reconnect must not block shutdown
            await asyncio.wait(self._tasks, timeout=5.0)
        self._tasks.clear()
        for ep in self.endpoints:  # stop reading; the last batch may still be answered
            ep.pause()
        flush = self._flush_task
        if flush is not None and not flush.done():
            try:  # let the last batch of acknowledgements finish writing
                await asyncio.wait_for(asyncio.shield(flush), 5.0)
            except (TimeoutError, Exception):
                flush.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await flush
        for ep in self.endpoints:
            ep.close()
        self.endpoints.clear()
        self.flush_metrics()
        self.log.info("DHCP server stopped", action="dhcp_stopped")

    def health(self) -> dict[str, Any]:
        return {
            "ok": bool(self.endpoints),
            "sockets": len(self.endpoints),
            "leases": self.table.active_count(self.clock()),
            "bindings": len(self.table.bindings),
            "pending_writes": len(self._queue),
        }

    # ----- hot path ---------------------------------------------------------------------------

    def _on_datagram(self, data: bytes, ep: DhcpEndpoint) -> None:
        if ep.behind and peek_type(data) == MessageType.DISCOVER:
            # Overloaded: shed new DISCOVERs so started exchanges (REQUESTs) complete instead
            # of every exchange timing out; the shed clients retry in a few seconds.
            self._count("drop", "overload")
            return
        out = handle(data, self.state, self.clock(), ep.local)
        self._count("packet", "in", _TYPE_NAMES.get(out.request, "invalid"))
        if out.request and self.boot_activity is not None and (mac := peek_mac(data)):
            self.boot_activity.seen_mac(mac)
        if out.drop is not None:
            self._count("drop", out.drop)
        if out.changes:
            self._queue.append((out, ep))
            if not self._writing:
                self._writing = True
                self._flush_task = asyncio.get_running_loop().create_task(self._flush())
        elif out.data:
            self._send(out, ep)

    def _send(self, out: Outcome, ep: DhcpEndpoint) -> None:
        ep.send(out)
        self._count("packet", "out", _TYPE_NAMES.get(int(out.msg or 0), "none"))
        if out.assigned is not None:
            mac, ip = out.assigned
            self.log.info("DHCP lease assigned to server", action="lease_assigned", mac=mac, ip=ip)
            if self.boot_activity is not None:
                self.boot_activity.assigned(mac, ip)

    async def _flush(self) -> None:
        """Group commit: write every queued lease change, then send the waiting replies."""
        try:
            while self._queue:
                batch = self._queue[: self.cfg.persist_batch]
                del self._queue[: len(batch)]
                try:
                    await asyncio.wait_for(
                        self.dstore.write([c for out, _ in batch for c in out.changes]),
                        self.cfg.persist_timeout,
                    )
                except Exception as e:
                    for _ in batch:
                        self._count("drop", "store_error")
                    if isinstance(e, TimeoutError):
                        why = f"etcd did not confirm the write within {self.cfg.persist_timeout}s"
                    else:
                        why = str(e)[:300] or type(e).__name__
                    self.log.warning(
                        "lease write failed; replies withheld (clients will retry)",
                        action="lease_write_failed",
                        error=why,
                        count=len(batch),
                    )
                    continue
                for out, ep in batch:
                    if out.data:
                        self._send(out, ep)
        finally:
            self._writing = False

    # ----- background -------------------------------------------------------------------------

    async def _watch(self, start_revision: int) -> None:
        async for ev in self.dstore.watch_bindings(start_revision):
            if ev.kind == "put" and ev.binding is not None:
                self.table.set_binding(ev.binding)
            elif ev.kind == "delete":
                self.table.remove_binding(ev.mac)
            elif ev.kind == "resync":
                for mac in list(self.table.bindings):
                    self.table.remove_binding(mac)
                for b in ev.snapshot or []:
                    self.table.set_binding(b)
            else:
                self.log.warning("ignoring invalid binding", action="binding_invalid", key=ev.key)

    async def _housekeeping(self) -> None:
        """Every second: push counters to Prometheus; now and then forget stale offers."""
        every = min(30.0, max(1.0, self.cfg.offer_timeout / 2))
        last = self.clock()
        while True:
            await asyncio.sleep(1.0)
            self.flush_metrics()
            if self.clock() - last >= every:
                last = self.clock()
                self.table.purge(last)

    # ----- public API (workflow, admin API) ---------------------------------------------------

    async def add_binding(
        self,
        mac: str,
        ip: str,
        hostname: str | None = None,
        boot_file: str | None = None,
        *,
        actor: str | None = None,
        sn: str | None = None,
    ) -> dict[str, Any]:
        """Bind ``mac`` to ``ip`` (persisted to etcd, served at once). Idempotent; a new IP for
        a bound MAC replaces the old one. With ``actor``, the call is audited (``sn`` too).

        Raises ValidationError (bad MAC/IP/hostname/boot file, IP outside every served subnet
        or reserved), Conflict (IP bound to or leased by another MAC), StoreError.
        """
        try:
            b = await self._add_binding(mac, ip, hostname, boot_file)
        except ProvisionError as e:
            self._audit(actor, "dhcp.binding.add", mac, e.message, sn, ip=ip)
            raise
        self._audit(actor, "dhcp.binding.add", b["mac"], "ok", sn, ip=b["ip"])
        return b

    async def _add_binding(
        self, mac: str, ip: str, hostname: str | None, boot_file: str | None
    ) -> dict[str, Any]:
        b = Binding.from_json({"mac": mac, "ip": ip, "hostname": hostname, "boot_file": boot_file})
        sub = self.state.subnet_of(b.ip)
        if sub is None:
            served = ", ".join(str(s.network) for s in self.state.subnets) or "none"
            raise ValidationError(
                f"{ip} is not inside a served subnet ({served})", field="ip", ip=ip
            )
        if b.ip in sub.reserved:
            raise ValidationError(
                f"{ip} is reserved (network, broadcast, gateway or server address)", field="ip"
            )
        other = self.table.bound_ips.get(b.ip)
        if other is not None and other != b.mac:
            raise Conflict(f"{ip} is already bound to {other}", ip=ip, mac=other)
        holder = self.table.by_ip.get(b.ip)
        if holder is not None and holder != b.mac:
            lease = self.table.leases[holder]
            if lease.expires > self.clock():
                raise Conflict(f"{ip} is leased to {holder}", ip=ip, mac=holder)
        await self.dstore.put_binding(b)
        self.table.set_binding(b)
        self.log.info("DHCP binding added", action="binding_added", mac=b.mac, ip=ip)
        return b.to_json()

    async def remove_binding(
        self, mac: str, *, actor: str | None = None, sn: str | None = None
    ) -> bool:
        """Remove the binding of ``mac`` and its lease. False when there was none (not an
        error: removal is idempotent). With ``actor``, the call is audited."""
        try:
            removed = await self._remove_binding(mac)
        except ProvisionError as e:
            self._audit(actor, "dhcp.binding.delete", mac, e.message, sn)
            raise
        self._audit(actor, "dhcp.binding.delete", mac, "ok" if removed else "not found", sn)
        return removed

    async def _remove_binding(self, mac: str) -> bool:
        mac = normalize_mac(mac)
        deleted = await self.dstore.delete_binding(mac)
        b = self.table.remove_binding(mac)
        lease = self.table.leases.get(mac)
        if lease is not None and lease.static:
            await self.dstore.delete_lease(mac)
            self.table.forget(mac)
        if deleted or b is not None:
            ip = int_to_ip(b.ip) if b else ""
            self.log.info("DHCP binding removed", action="binding_removed", mac=mac, ip=ip)
        return deleted or b is not None

    def _audit(
        self, actor: str | None, action: str, target: str, result: str, sn: str | None, **kw: Any
    ) -> None:
        if actor is not None and self.audit is not None:
            self.audit.record(actor, action, target, result=result, sn=sn, **kw)

    def get_binding(self, mac: str) -> dict[str, Any] | None:
        b = self.table.bindings.get(normalize_mac(mac))
        return None if b is None else b.to_json()

    def bindings(self) -> list[dict[str, Any]]:
        return [b.to_json() for b in sorted(self.table.bindings.values(), key=lambda b: b.ip)]

    def get_lease(self, mac: str) -> dict[str, Any] | None:
        lease = self.table.leases.get(normalize_mac(mac))
        return None if lease is None else self._lease_json(lease, self.clock())

    def leases(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [
            self._lease_json(x, now) for x in sorted(self.table.leases.values(), key=lambda x: x.ip)
        ]

    @staticmethod
    def _lease_json(lease: Any, now: float) -> dict[str, Any]:
        d = lease.to_json()
        d["state"] = "active" if lease.expires > now else "expired"
        d["remaining"] = max(0, int(lease.expires - now))
        return d
