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

from regional_client.config.switch import SwitchConfig, SwitchEntry
from regional_client.core.audit import Audit
from regional_client.core.errors import (
    ConfigError,
    Conflict,
    NotFound,
    ProvisionError,
    SwitchError,
    ValidationError,
)
from regional_client.core.logs import get_logger
from regional_client.core.metrics import Metrics
from regional_client.drivers.registry import SWITCH_DRIVERS
from regional_client.drivers.switch import validate
from regional_client.drivers.switch.base import (
    ConnectionParams,
    MacLocation,
    PortConfig,
    PortStatus,
    SwitchDriver,
)
from regional_client.drivers.switch.batch import Batch, ChangeRequest, restore_request, run_batch
from regional_client.drivers.switch.hostkeys import HostKeyPins, MemoryHostKeys
from regional_client.drivers.switch.report import ChangeResult, PortLocation, Reporter

Decrypt = Callable[[str], str]


@dataclass
class _Switch:
    entry: SwitchEntry
    cls: type[SwitchDriver]
    params: ConnectionParams
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    queue: asyncio.Queue[ChangeRequest] = field(default_factory=asyncio.Queue)
    carry: list[ChangeRequest] = field(default_factory=list)
    worker: asyncio.Task[None] | None = None
    running: asyncio.Task[None] | None = None


class SwitchManager:
    """Inventory + safe changes. ``async start()`` / ``async stop()`` like every service."""

    def __init__(
        self,
        config: SwitchConfig,
        audit: Audit | None = None,
        metrics: Metrics | None = None,
        decrypt: Decrypt | None = None,
        snmp_lookup: Callable[[SwitchEntry, str, str], Any] | None = None,
        host_keys: HostKeyPins | None = None,
    ) -> None:
        self.config = config
        self.host_keys = host_keys if config.host_keys == "tofu" else None
        """Where SSH host keys are pinned on first use; None: none (known_hosts files or off).
        Without a pin store (tests, benchmarks) ``tofu`` pins in this process only."""
        if config.host_keys == "tofu" and host_keys is None:
            self.host_keys = MemoryHostKeys()
        self.audit = audit
        self.decrypt = decrypt
        self.sessions_opened = 0
        self.remembered: dict[tuple[str, str], PortConfig] = {}
        """(switch, port) → config before the first change this process made (cleanup aid)."""
        self._snmp = snmp_lookup
        self._switches: dict[str, _Switch] = {}
        self._metrics = metrics
        self._report = Reporter(audit, metrics)
        if metrics is not None:
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
        cls = SWITCH_DRIVERS.get(entry.vendor_name)
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
            ca_bundle=entry.ca_bundle,
            snmp_community=self._secret(entry.snmp_community, f"{key}.snmp_community"),
            ssh_known_hosts=entry.ssh_known_hosts,
            host_key_pins=self.host_keys,
        )
        return _Switch(entry, cls, params)

    async def start(self) -> None:
        for sw in self._switches.values():
            if sw.worker is None:
                sw.worker = asyncio.create_task(self._worker(sw), name=f"switch-{sw.entry.name}")

    async def stop(self, grace: float | None = None) -> None:
        """Let the batches in flight finish, all switches together and within ``grace``
        (default: twice the switch timeout), then cancel what still runs (a hung session must
        not hold a shutdown up); fail what is still queued."""
        grace = self.config.timeout * 2 if grace is None else grace
        running: dict[asyncio.Task[None], str] = {}
        for sw in self._switches.values():
            if sw.worker is None:
                continue
            sw.worker.cancel()
            await asyncio.gather(sw.worker, return_exceptions=True)
            sw.worker = None
            if sw.running is not None:
                running[sw.running] = sw.entry.name
        if running:
            _, late = await asyncio.wait(running, timeout=grace)
            for t in late:
                get_logger("switch").warning(
                    "switch batch still running at shutdown: abandoned",
                    action="switch_batch_abandoned",
                    switch=running[t],
                    grace=grace,
                )
                t.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for sw in self._switches.values():
            stopped = SwitchError("switch manager stopped before the change", switch=sw.entry.name)
            waiting = [*sw.carry, *(sw.queue.get_nowait() for _ in range(sw.queue.qsize()))]
            sw.carry = []
            for req in waiting:
                if not req.future.done():
                    req.future.set_exception(stopped)

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

    async def _lookup_one(self, sw: _Switch, mac: str) -> tuple[MacLocation, str] | None:
        """(where the MAC is learned, that port's mode) on one switch, or None."""
        e = sw.entry
        use_snmp = (
            e.protocol == "snmp"
            or e.mac_lookup == "snmp"
            or (e.mac_lookup == "auto" and e.snmp_community)
        )
        if not use_snmp:

            async def find(d: SwitchDriver) -> tuple[MacLocation, str] | None:
                loc = await d.find_port_by_mac(mac)
                return None if loc is None else (loc, (await d.get_port_config(loc.port)).mode)

            return await self._read(sw, find)  # one session: lookup and the port's mode
        if self._snmp is not None:
            found = await self._snmp(e, sw.params.snmp_community or "", mac)
        else:
            from regional_client.drivers.switch.snmp import SnmpMacLookup

            found = await SnmpMacLookup(
                e.host,
                sw.params.snmp_community or "",
                e.snmp_port,
                sw.params.timeout,
                vlan_communities=sw.cls.vendor == "cisco_ios",
            ).find(mac)
        if found is None:
            return None
        loc = MacLocation(validate.port_name(found.port, sw.cls.naming), found.vlan)
        if e.protocol == "snmp":
            return loc, "unknown"  # no CLI/API to read the mode (and no changes either)
        return loc, (await self._read(sw, lambda d: d.get_port_config(loc.port))).mode

    async def find_port(
        self, mac: str, switch: str | None = None, allow_trunk: bool = False
    ) -> PortLocation:
        """Where ``mac`` is learned: on ``switch`` or across the inventory.

        A server's own port is an access port; a MAC also seen on trunks is seen through
        uplinks. So the access port wins, and a MAC seen *only* on trunk ports is refused
        (``Conflict``) unless ``allow_trunk`` (with a single location): changing an uplink to the
        install VLAN would cut off everything behind it. Name the port in the task instead.
        """
        mac = validate.mac_address(mac)
        targets = [self._get(switch)] if switch else list(self._switches.values())
        found = await asyncio.gather(
            *(self._lookup_one(sw, mac) for sw in targets), return_exceptions=True
        )
        hits: list[tuple[PortLocation, str]] = []
        errors = []
        for sw, res in zip(targets, found, strict=True):
            if isinstance(res, BaseException):
                errors.append(f"{sw.entry.name}: {res}")
            elif res is not None:
                loc, mode = res
                hits.append((PortLocation(sw.entry.name, loc.port, loc.vlan), mode))
        if not hits:
            raise NotFound(f"MAC {mac} not found on any switch", mac=mac, errors=errors)
        access = [h for h, mode in hits if mode == "access"]
        if len(access) == 1:
            return access[0]
        where = [{**h.to_dict(), "mode": mode} for h, mode in hits]
        if len(access) > 1:
            raise Conflict(f"MAC {mac} is on several access ports", mac=mac, locations=where)
        if allow_trunk and len(hits) == 1:
            return hits[0][0]
        raise Conflict(
            f"MAC {mac} is only seen on non-access ports (uplinks?); name the port in the task",
            mac=mac,
            locations=where,
        )

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
        if sw.entry.protocol == "snmp":
            raise ValidationError(
                f"switch {sw.entry.name} is SNMP-only (MAC lookups); it takes no changes",
                switch=sw.entry.name,
            )
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
        while True:
            batch = await self._collect(sw)
            sw.running = asyncio.create_task(self._run(sw, batch))
            await asyncio.shield(sw.running)  # stop() lets an in-flight batch finish
            sw.running = None

    async def _collect(self, sw: _Switch) -> Batch:
        """Requests arriving within ``batch_window``; a port already in the batch (or waiting
        from an earlier collection) is carried to the next batch, keeping its order."""
        loop = asyncio.get_running_loop()
        batch, carry, sw.carry = Batch([]), sw.carry, []
        for req in carry:
            self._place(sw, batch, req)
        if not batch.requests:
            self._place(sw, batch, await sw.queue.get())
        deadline = loop.time() + self.config.batch_window
        while len(batch.requests) < self.config.max_batch:
            try:
                req = await asyncio.wait_for(sw.queue.get(), max(deadline - loop.time(), 0))
            except TimeoutError:
                break
            self._place(sw, batch, req)
        return batch

    def _place(self, sw: _Switch, batch: Batch, req: ChangeRequest) -> None:
        held = {r.port for r in sw.carry}
        full = len(batch.requests) >= self.config.max_batch
        if full or req.port in held or not batch.add(req):
            sw.carry.append(req)

    async def _run(self, sw: _Switch, batch: Batch) -> None:
        started = time.monotonic()
        async with sw.lock:
            try:
                drv = await self._session(sw)
            except ProvisionError as exc:
                batch.fail_all(exc)
                self._report.unreachable(sw.entry.name, batch, exc)
                return
            lost = False
            try:
                await run_batch(drv, batch, save=sw.entry.save_config)
            except ProvisionError as exc:
                batch.fail_all(exc)
                lost = True
            finally:
                await drv.disconnect()
            if lost:
                await self._recover(sw, batch)
        self._report.batch(sw.entry.name, batch, drv, time.monotonic() - started)

    async def _recover(self, sw: _Switch, batch: Batch) -> None:
        """The session died mid-batch: in a new session, put back every port whose previous
        config was read (it may have been changed); best effort, each outcome recorded."""
        todo = [r for r in batch.requests if r.previous is not None and not r.restored]
        if not todo:
            return
        try:
            drv = await self._session(sw)
        except ProvisionError as exc:
            for r in todo:
                r.error = SwitchError(
                    f"{r.error.message if r.error else 'session lost'}; previous config NOT "
                    f"restored (no new session: {exc.message})",
                    port=r.port, restored=False,
                )  # fmt: skip
            return
        try:
            for r in todo:
                await restore_request(drv, r)
        finally:
            await drv.disconnect()


__all__ = ["ChangeResult", "PortLocation", "SwitchManager"]
