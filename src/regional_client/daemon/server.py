"""One regional client process: start everything in order, stop it in reverse, handle signals.

Start order: logging → secret box (the etcd password may be enc:) → audit → etcd (embedded, if
no endpoints) → store → loop monitor, audit trail, heartbeat → agent service
(subscribes before the cache loads, so it sees every task) → cache (list + watch) → components
(DHCP, TFTP, ... see :mod:`regional_client.daemon.components`) → HTTP API. Stop is the reverse; on
SIGTERM/SIGINT the API stops accepting, in-flight work is given ``grace`` seconds, pending
progress is flushed, and everything left is resumable from etcd.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from pathlib import Path
from typing import Any

import uvicorn

from regional_client.agentapi import http as agent_http
from regional_client.agentapi.service import AgentService
from regional_client.api.app import create_app
from regional_client.api.auth import AdminAuth
from regional_client.api.guard import Guard, guarded_protocol
from regional_client.config import Config
from regional_client.config.secretbox import SecretBox, check_clear_passwords, clear_passwords
from regional_client.core.audit import Audit
from regional_client.core.limits import LimitHits
from regional_client.core.logs import get_logger, set_mac_resolver, setup_logging
from regional_client.core.loop_monitor import LoopMonitor
from regional_client.core.metrics import Metrics
from regional_client.daemon.components import build_services
from regional_client.daemon.health import Health
from regional_client.daemon.services import Core, Service, Services
from regional_client.store.embedded import EmbeddedEtcd
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from regional_client.tasks.audit_trail import AuditTrail
from regional_client.tasks.cache import Cache
from regional_client.tasks.heartbeat import Heartbeat, load_instance_id

log = get_logger("main")


STOP_TIMEOUT = 90.0
"""Seconds one service may take to stop before shutdown moves on without it."""


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: :class:`RegionalClient` owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
        yield


class RegionalClient:
    def __init__(self, config: Config, *, configure_logging: bool = True) -> None:
        self.config = config
        self.configure_logging = configure_logging
        self.services: Services | None = None
        self.etcd: EmbeddedEtcd | None = None
        self._http: list[tuple[_Server, asyncio.Task[Any]]] = []
        self._started: list[Service] = []
        self._store: EtcdStore | None = None
        self._audit: Audit | None = None
        self._instance_id: str | None = None
        self.stopping = asyncio.Event()
        self.api_port: int | None = None
        """Port of the install-side listener (agent API, HTTP boot, health)."""
        self.admin_port: int | None = None
        """Port of the admin listener (the same as ``api_port`` when not split)."""

    @property
    def core(self) -> Core:
        assert self.services is not None, "start() first"
        return self.services.core

    async def _start(self, svc: Service) -> None:
        await svc.start()
        self._started.append(svc)

    async def _connect_store(self, box: SecretBox) -> tuple[EtcdStore, list[str]]:
        cfg, state = self.config, Path(self.config.state_dir)
        endpoints = list(cfg.etcd.endpoints)
        if not endpoints:
            e = cfg.etcd.embedded
            self.etcd = EmbeddedEtcd(state, e.binary, e.client_port, e.peer_port, e.restart_backoff)
            endpoints = [await self.etcd.start()]
        store = self._store = EtcdStore.from_config(cfg.etcd, endpoints, box.decrypt, state)
        await store.connect()
        return store, endpoints

    async def start(self) -> Services:
        cfg = self.config
        state = Path(cfg.state_dir)
        state.mkdir(parents=True, exist_ok=True)
        if self.configure_logging:
            lg = cfg.logging
            setup_logging(
                cfg.idc, lg.level, lg.file, lg.max_size, lg.max_backups, lg.max_age, lg.stderr
            )
        # The secret box first: the etcd password itself may be an enc: value.
        box = SecretBox.from_config(cfg.secrets, state)
        check_clear_passwords(cfg, clear_passwords(cfg), lambda text: log.warning(
            text, action="clear_password"))  # fmt: skip
        audit = self._audit = Audit(cfg.logging.audit_file or state / "audit.log", cfg.idc)
        instance_id = self._instance_id = load_instance_id(state, cfg.idc)
        store, endpoints = await self._connect_store(box)
        keys, metrics = Keys(cfg.idc), Metrics(cfg.idc)
        monitor = LoopMonitor(metrics)
        await self._start(monitor)
        trail = AuditTrail(
            store,
            keys,
            max_age_days=cfg.logging.audit_trail_max_age,
            max_records=cfg.logging.audit_trail_max_records,
        )
        audit.add_sink(trail.sink)
        await self._start(trail)
        ttl = max(5, round(cfg.workflow.heartbeat_ttl))
        await self._start(Heartbeat(store, keys, instance_id, ttl=ttl))
        cache = Cache(store, keys)
        set_mac_resolver(lambda sn: t.mac if (t := cache.get_task(sn)) is not None else None)
        agent = AgentService(store, keys, cache, audit, limits=cfg.api.agent, metrics=metrics)
        await self._start(agent)  # subscribes before the cache loads: sees every task
        await self._start(cache)
        core = Core(
            config=cfg, instance_id=instance_id, keys=keys, metrics=metrics, audit=audit,
            secrets=box, store=store, cache=cache, agent=agent, trail=trail,
            loop_monitor=monitor, admin=AdminAuth(cfg.api.admin_tokens, audit),
        )  # fmt: skip
        services = self.services = build_services(core)
        for svc in services.in_start_order():
            await self._start(svc)
        await self._start_http(services)
        gc.freeze()  # start-up objects are long-lived: keep them out of every GC pass
        log.info(
            "regional client started",
            action="started",
            instance=instance_id,
            port=self.api_port,
            admin_port=self.admin_port,
            etcd=",".join(endpoints),
        )
        return services

    async def _start_http(self, services: Services) -> None:
        """Two listeners (SPEC §10): the install side serves the agent API, HTTP boot and
        health; the admin side (default loopback) everything, with the OpenAPI document and
        metrics. ``api.admin.port: null`` serves everything on the install listener."""
        core, api = services.core, self.config.api
        health = Health(core, services.health_checks)
        agent = agent_http.router(core.agent)
        everything = create_app(
            core.metrics, health=health, routers=(agent, *services.routers),
            root_routers=services.root_routers,
        )  # fmt: skip
        hits = LimitHits(core.metrics)
        if api.admin.port is None:
            self.api_port = await self._listen("install", everything, api.listen_addr,
                                               self.config.api_port, hits)  # fmt: skip
            self.admin_port = self.api_port
            return
        install = create_app(
            core.metrics, health=health, routers=(agent,), root_routers=services.root_routers,
            docs=False, with_metrics=False,
        )  # fmt: skip
        self.api_port = await self._listen("install", install, api.listen_addr,
                                           self.config.api_port, hits)  # fmt: skip
        tls = (str(api.admin.tls_cert), str(api.admin.tls_key)) if api.admin.tls_cert else None
        self.admin_port = await self._listen("admin", everything, api.admin.listen_addr,
                                             api.admin.port, hits, tls)  # fmt: skip

    async def _listen(
        self, name: str, app: Any, host: str, port: int, hits: LimitHits,
        tls: tuple[str, str] | None = None,
    ) -> int:  # fmt: skip
        lim = self.config.api.limits
        conf = uvicorn.Config(
            app,
            host=host,
            port=port,
            http=guarded_protocol(Guard(lim, hits)),
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
            # Agents poll every second or few; uvicorn's default (5 s) closes idle connections
            # just as an agent reuses one (ReadError, then a retry). nginx's default instead.
            timeout_keep_alive=round(lim.keep_alive),
            ssl_certfile=tls[0] if tls else None,
            ssl_keyfile=tls[1] if tls else None,
        )
        server = _Server(conf)
        task = asyncio.get_running_loop().create_task(server.serve())
        self._http.append((server, task))
        while not server.started:
            if task.done():
                exc = task.exception()
                raise OSError(f"{name} listener failed to start on {host}:{port}: {exc}")
            await asyncio.sleep(0.02)
        return int(server.servers[0].sockets[0].getsockname()[1])

    async def stop(self) -> None:
        for server, _task in self._http:
            server.should_exit = True
        for _server, task in self._http:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
        self._http.clear()
        for svc in reversed(self._started):
            try:
                # Each service bounds its own wait; this is the net for one that does not.
                await asyncio.wait_for(svc.stop(), STOP_TIMEOUT)
            except TimeoutError:
                log.error("service did not stop in time", action="stop_timeout",
                          service=type(svc).__name__, seconds=STOP_TIMEOUT)  # fmt: skip
            except Exception:
                log.exception("error while stopping", action="stop_error", service=repr(svc))
        self._started.clear()
        if self._store is not None:
            await self._store.close()
        if self.etcd is not None:
            await self.etcd.stop()
        set_mac_resolver(None)
        if self._audit is not None:
            log.info("regional client stopped", action="stopped", instance=self._instance_id)
            self._audit.close()

    async def run_until_signal(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        try:
            await self.start()
            await self.stopping.wait()
            log.info("signal received: shutting down", action="shutdown")
        finally:
            await self.stop()
