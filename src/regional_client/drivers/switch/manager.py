"""The facade the workflow and the admin API call: several switches, safe batched changes.

:class:`SwitchManager` holds the inventory (``config.switch``), finds a server's port by MAC
across it (SNMP or CLI/API) unless the task names switch and port, and changes ports safely:

1. inputs validated with the target switch's naming rules before any session is opened;
2. one worker per switch: requests arriving within ``batch_window`` are applied together in one
   session (one session per switch at a time; reads share the same per-switch lock);
3. in that session: every port's previous config is read and remembered, all changes are sent
   in one configuration pass, each port is read back and compared; a refused or unverified port
   is restored to its previous config (and read back again);
4. optional save of the running config; an audit record per change with the exact commands
   (never credentials) and one per session with everything sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from regional_client.audit import Audit
from regional_client.config.switch import SwitchConfig, SwitchEntry
from regional_client.drivers.switch import validate
from regional_client.drivers.switch.base import (
    ConnectionParams,
    MacLocation,
    PortConfig,
    PortStatus,
    SwitchDriver,
)
from regional_client.drivers.switch.batch import Batch, ChangeRequest, run_batch
from regional_client.drivers.switch.registry import canonical_vendor, driver_class
from regional_client.errors import (
    ConfigError,
    Conflict,
    NotFound,
    ProvisionError,
    SwitchError,
    ValidationError,
)
from regional_client.logs import get_logger
from regional_client.metrics import Metrics

log = get_logger("switch")
Decrypt = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class PortLocation:
    switch: str
    port: str
    vlan: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {"switch": self.switch, "port": self.port, "vlan": self.vlan}


@dataclass(frozen=True, slots=True)
class ChangeResult:
    """What a change did; ``previous`` is what to restore at cleanup."""

    switch: str
    port: str
    previous: PortConfig
    applied: PortConfig
    commands: list[str]
    saved: bool = False
    batch_size: int = 1

    def to_dict(self) -> dict[str, object]:
        return {
            "switch": self.switch,
            "port": self.port,
            "previous": self.previous.to_dict(),
            "applied": self.applied.to_dict(),
            "commands": self.commands,
            "saved": self.saved,
            "batch_size": self.batch_size,
        }


@dataclass
class _Switch:
    entry: SwitchEntry
    cls: type[SwitchDriver]
    params: ConnectionParams
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    queue: asyncio.Queue[ChangeRequest] = field(default_factory=asyncio.Queue)
    worker: asyncio.Task[None] | None = None


class SwitchManager:
    """Inventory + safe changes. ``async start()`` / ``async stop()`` like every service."""

    def __init__(
        self,
        config: SwitchConfig,
        audit: Audit | None = None,
        metrics: Metrics | None = None,
        decrypt: Decrypt | None = None,
        snmp_lookup: Callable[[SwitchEntry, str, str], Any] | None = None,
    ) -> None:
        self.config = config
        self.audit = audit
        self.decrypt = decrypt
        self.sessions_opened = 0
        self.remembered: dict[tuple[str, str], PortConfig] = {}
        """(switch, port) → config before the first change this process made (cleanup aid)."""
        self._snmp = snmp_lookup
        self._switches: dict[str, _Switch] = {}
        self._metrics = metrics
        if metrics is not None:
            self._m_changes = metrics.counter(
                "regional_client_switch_changes_total", "Switch port changes", ["switch", "result"]
            )
            self._m_sessions = metrics.counter(
                "regional_client_switch_sessions_total", "Switch sessions opened", ["switch"]
            )
        for entry in config.switches():
            self._switches[entry.name] = self._build(entry)

    # -- lifecycle ---------------------------------------------------------------------------

    def _secret(self, value: str | None, what: str) -> str | None:
        if value is None or not value.startswith("enc:"):
            return value
        if self.decrypt is None:
            raise ConfigError(f"{what} is encrypted but no secrets key is configured", key=what)
        return self.decrypt(value)

    def _build(self, entry: SwitchEntry) -> _Switch:
        cls = driver_class(entry.vendor_name)
        key = f"switch.inventory[{entry.name}]"
        params = ConnectionParams(
            host=entry.host,
            port=entry.port,
            username=entry.username,
            password=self._secret(entry.password, f"{key}.password"),
            enable_password=self._secret(entry.enable_password, f"{key}.enable_password"),
            timeout=entry.timeout or self.config.timeout,
            name=entry.name,
            verify_tls=entry.verify_tls,
            snmp_community=self._secret(entry.snmp_community, f"{key}.snmp_community"),
            ssh_known_hosts=entry.ssh_known_hosts,
        )
        return _Switch(entry, cls, params)

    async def start(self) -> None:
        for sw in self._switches.values():
            if sw.worker is None:
                sw.worker = asyncio.create_task(self._worker(sw), name=f"switch-{sw.entry.name}")

    async def stop(self) -> None:
        for sw in self._switches.values():
            if sw.worker is not None:
                sw.worker.cancel()
                await asyncio.gather(sw.worker, return_exceptions=True)
                sw.worker = None

    @property
    def names(self) -> list[str]:
        return list(self._switches)

    def entry(self, name: str | None) -> SwitchEntry:
        return self._get(name).entry

    def _get(self, name: str | None) -> _Switch:
        if name is None:
            if len(self._switches) == 1:
                return next(iter(self._switches.values()))
            raise ValidationError(
                "several switches configured: name one (switch=...)", switches=self.names
            )
        try:
            return self._switches[name]
        except KeyError:
            raise NotFound(f"no switch named {name!r}", switch=name) from None

    # -- sessions ----------------------------------------------------------------------------

    async def _session(self, sw: _Switch) -> SwitchDriver:
        drv = sw.cls(sw.params)
        await drv.connect()
        self.sessions_opened += 1
        if self._metrics is not None:
            self._m_sessions.labels(idc=self._metrics.idc, switch=sw.entry.name).inc()
        return drv

    async def _read(self, sw: _Switch, fn: Callable[[SwitchDriver], Any]) -> Any:
        async with sw.lock:
            drv = await self._session(sw)
            try:
                return await fn(drv)
            finally:
                await drv.disconnect()

    # -- lookups -----------------------------------------------------------------------------

    async def _lookup_one(self, sw: _Switch, mac: str) -> MacLocation | None:
        e = sw.entry
        use_snmp = e.mac_lookup == "snmp" or (e.mac_lookup == "auto" and e.snmp_community)
        if use_snmp and self._snmp is not None:
            loc = await self._snmp(e, sw.params.snmp_community or "", mac)
        elif use_snmp:
            from regional_client.drivers.switch.snmp import SnmpMacLookup

            loc = await SnmpMacLookup(
                e.host, sw.params.snmp_community or "", e.snmp_port, sw.params.timeout
            ).find(mac)
        else:
            return await self._read(sw, lambda d: d.find_port_by_mac(mac))
        if loc is None:
            return None
        return MacLocation(validate.port_name(loc.port, sw.cls.naming), loc.vlan)

    async def find_port(self, mac: str, switch: str | None = None) -> PortLocation:
        """Where ``mac`` is learned: on ``switch`` or across the inventory (edge port wins)."""
        mac = validate.mac_address(mac)
        targets = [self._get(switch)] if switch else list(self._switches.values())
        found = await asyncio.gather(
            *(self._lookup_one(sw, mac) for sw in targets), return_exceptions=True
        )
        hits, errors = [], []
        for sw, res in zip(targets, found, strict=True):
            if isinstance(res, BaseException):
                errors.append(f"{sw.entry.name}: {res}")
            elif res is not None:
                hits.append(PortLocation(sw.entry.name, res.port, res.vlan))
        if not hits:
            raise NotFound(f"MAC {mac} not found on any switch", mac=mac, errors=errors)
        if len(hits) > 1:
            hits = await self._edge_ports(hits)
        if len(hits) > 1:
            raise Conflict(
                f"MAC {mac} is on several access ports",
                mac=mac,
                locations=[h.to_dict() for h in hits],
            )
        return hits[0]

    async def _edge_ports(self, hits: list[PortLocation]) -> list[PortLocation]:
        """Seen on several switches: uplinks are trunks, the server's own port is not."""
        edge = []
        for h in hits:
            cfg = await self._read(self._get(h.switch), lambda d, p=h.port: d.get_port_config(p))
            if cfg.mode == "access":
                edge.append(h)
        return edge or hits

    async def list_ports(self, switch: str | None = None) -> list[PortStatus]:
        return await self._read(self._get(switch), lambda d: d.list_ports())

    async def port_status(self, port: str, switch: str | None = None) -> PortStatus:
        sw = self._get(switch)
        name = validate.port_name(port, sw.cls.naming)
        return await self._read(sw, lambda d: d.get_port_status(name))

    async def port_config(self, port: str, switch: str | None = None) -> PortConfig:
        """The port's VLAN configuration as the device reports it (what a change would replace)."""
        sw = self._get(switch)
        name = validate.port_name(port, sw.cls.naming)
        return await self._read(sw, lambda d: d.get_port_config(name))

    # -- changes -----------------------------------------------------------------------------

    async def configure(
        self,
        config: PortConfig | dict[str, Any],
        *,
        mac: str | None = None,
        switch: str | None = None,
        port: str | None = None,
        actor: str = "workflow",
        sn: str | None = None,
    ) -> ChangeResult:
        """Validate, queue, apply in the switch's next batch, verify; restore on failure."""
        if port is None:
            if mac is None:
                raise SwitchError("give a port or a MAC to locate it")
            loc = await self.find_port(mac, switch)
            switch, port = loc.switch, loc.port
        sw = self._get(switch)
        req = ChangeRequest(
            port=validate.port_name(port, sw.cls.naming),
            config=validate.port_config(config, sw.cls.naming),
            actor=actor,
            sn=sn,
            future=asyncio.get_running_loop().create_future(),
        )
        if sw.worker is None:
            await self.start()
        await sw.queue.put(req)
        result: ChangeResult = await req.future
        self.remembered.setdefault((result.switch, result.port), result.previous)
        return result

    async def set_install_vlan(
        self,
        mac: str | None = None,
        *,
        switch: str | None = None,
        port: str | None = None,
        **kw: Any,
    ) -> ChangeResult:
        """Workflow step "switch": the server's port to access mode on the install VLAN."""
        switch, port = await self._locate(mac, switch, port)
        vlan = self.entry(switch).install_vlan
        return await self.configure(PortConfig("access", (vlan,)), switch=switch, port=port, **kw)

    async def set_production_vlan(
        self,
        mac: str | None = None,
        *,
        switch: str | None = None,
        port: str | None = None,
        **kw: Any,
    ) -> ChangeResult:
        """Cleanup when no previous config is known: access mode on the production VLAN."""
        switch, port = await self._locate(mac, switch, port)
        vlan = self.entry(switch).production_vlan
        return await self.configure(PortConfig("access", (vlan,)), switch=switch, port=port, **kw)

    async def _locate(
        self, mac: str | None, switch: str | None, port: str | None
    ) -> tuple[str, str]:
        if port is not None:
            return self._get(switch).entry.name, port
        if mac is None:
            raise SwitchError("give a port or a MAC to locate it")
        loc = await self.find_port(mac, switch)
        return loc.switch, loc.port

    async def restore(
        self, switch: str, port: str, previous: PortConfig, **kw: Any
    ) -> ChangeResult:
        """Put a port back to a remembered config (cleanup)."""
        sw = self._get(switch)
        desc = previous.description
        try:
            validate.description(desc, sw.cls.naming) if desc else None
        except ProvisionError:
            desc = None  # a description we could not send back safely stays as it is
        cfg = PortConfig(previous.mode, previous.vlans, previous.native_vlan, desc)
        return await self.configure(cfg, switch=switch, port=port, **kw)

    # -- the per-switch worker ---------------------------------------------------------------

    async def _worker(self, sw: _Switch) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await sw.queue.get()
            batch = Batch([first])
            deadline = loop.time() + self.config.batch_window
            while len(batch.requests) < self.config.max_batch:
                try:
                    remaining = deadline - loop.time()
                    req = await asyncio.wait_for(sw.queue.get(), max(remaining, 0))
                except TimeoutError:
                    break
                if not batch.add(req):
                    await sw.queue.put(req)  # same port twice: next batch, in order
                    break
            await self._run(sw, batch)

    async def _run(self, sw: _Switch, batch: Batch) -> None:
        started = time.monotonic()
        async with sw.lock:
            try:
                drv = await self._session(sw)
            except ProvisionError as exc:
                batch.fail_all(exc)
                self._audit_failures(sw, batch, exc)
                return
            try:
                await run_batch(drv, batch, save=sw.entry.save_config)
            except ProvisionError as exc:
                batch.fail_all(exc)
            finally:
                await drv.disconnect()
        self._report(sw, batch, drv, time.monotonic() - started)

    def _report(self, sw: _Switch, batch: Batch, drv: SwitchDriver, seconds: float) -> None:
        name = sw.entry.name
        for req in batch.requests:
            ok = req.error is None
            if self._metrics is not None:
                self._m_changes.labels(
                    idc=self._metrics.idc, switch=name, result="ok" if ok else "failed"
                ).inc()
            if req.future.done():
                pass
            elif ok:
                prev = req.previous or req.config
                req.future.set_result(
                    ChangeResult(
                        name,
                        req.port,
                        prev,
                        req.config,
                        req.commands,
                        batch.saved,
                        len(batch.requests),
                    )
                )
            else:
                req.future.set_exception(req.error)  # type: ignore[arg-type]
            if self.audit is not None:
                self.audit.record(
                    req.actor,
                    "switch.port.configure",
                    f"{name}/{req.port}",
                    result="ok" if ok else str(req.error),
                    sn=req.sn,
                    previous=req.previous.to_dict() if req.previous else None,
                    requested=req.config.to_dict(),
                    commands=req.commands,
                    restored=req.restored,
                    restore_commands=req.restore_commands,
                    batch_size=len(batch.requests),
                )
        if self.audit is not None:
            self.audit.record(
                "workflow",
                "switch.session",
                name,
                seconds=round(seconds, 3),
                changes=len(batch.requests),
                saved=batch.saved,
                sent=list(drv.sent),
            )
        log.info(
            "switch batch applied",
            action="switch_batch",
            switch=name,
            changes=len(batch.requests),
            failed=sum(r.error is not None for r in batch.requests),
            seconds=round(seconds, 3),
        )

    def _audit_failures(self, sw: _Switch, batch: Batch, exc: ProvisionError) -> None:
        for req in batch.requests:
            if not req.future.done():
                req.future.set_exception(exc)
            if self.audit is not None:
                self.audit.record(
                    req.actor,
                    "switch.port.configure",
                    f"{sw.entry.name}/{req.port}",
                    result=str(exc),
                    sn=req.sn,
                    requested=req.config.to_dict(),
                    commands=[],
                )


__all__ = ["ChangeResult", "PortLocation", "SwitchManager", "canonical_vendor"]
