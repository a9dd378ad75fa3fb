"""In-memory view of this IDC's tasks and servers, kept consistent with etcd.

Start-up lists ``/os/{idc}/machines/`` and ``/os/{idc}/servers/`` and then watches both from the
revision of that list (the store's watch resumes across etcd restarts and re-lists after a
compaction), so the view never misses a change. API reads come from here, not from etcd.

Typed events are dispatched to subscribers in etcd order:

* ``task_put`` — a task was created or changed (``task``, ``previous``);
* ``approved`` — a task's status became ``approved`` (also for approved tasks found at start);
* ``status_changed`` — any other status change (``previous`` holds the old task);
* ``task_deleted`` — a task key was deleted (``previous`` holds the last known task);
* ``server_registered`` / ``server_updated`` — a server record appeared / changed.

Subscribers are plain callables and must return quickly (schedule work, do not await it).
A task whose JSON is malformed or fails validation is kept out of ``tasks`` and listed in
``invalid`` with the reason, so operators see it and nothing else trips over it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pydantic

from regional_client.core.logs import get_logger
from regional_client.model import Server, Status, Task
from regional_client.store.etcd import KV, EtcdStore, WatchEvent
from regional_client.store.keys import Keys

log = get_logger("watcher")

EventType = Literal[
    "task_put", "approved", "status_changed", "task_deleted", "server_registered", "server_updated"
]


@dataclass(frozen=True, slots=True)
class CacheEvent:
    type: EventType
    sn: str
    task: Task | None = None
    previous: Task | None = None
    server: Server | None = None
    mod_revision: int = 0


Handler = Callable[[CacheEvent], None]


@dataclass(slots=True)
class Entry:
    task: Task
    mod_revision: int


class Cache:
    def __init__(self, store: EtcdStore, keys: Keys) -> None:
        self.store = store
        self.keys = keys
        self.tasks: dict[str, Entry] = {}
        self.servers: dict[str, Server] = {}
        self.invalid: dict[str, str] = {}
        self._server_revs: dict[str, int] = {}
        self.revision = 0
        """Newest revision applied from etcd (list or watch)."""
        self._handlers: list[Handler] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = asyncio.Event()

    # ----- subscribers ------------------------------------------------------------------------

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def _emit(self, ev: CacheEvent) -> None:
        for h in self._handlers:
            try:
                h(ev)
            except Exception:
                log.exception(
                    "event handler failed", action="handler_error", sn=ev.sn, event=ev.type
                )

    # ----- reads --------------------------------------------------------------------------------

    def get_task(self, sn: str) -> Task | None:
        e = self.tasks.get(sn)
        return e.task if e else None

    def task_revision(self, sn: str) -> int:
        e = self.tasks.get(sn)
        return e.mod_revision if e else 0

    def get_server(self, sn: str) -> Server | None:
        return self.servers.get(sn)

    def find_by_mac(self, mac: str) -> Task | None:
        for e in self.tasks.values():
            if e.task.mac == mac:
                return e.task
        return None

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for e in self.tasks.values():
            out[e.task.status.value] += 1
        return out

    # ----- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        tkvs, trev = await self.store.get_prefix(self.keys.machines_prefix)
        skvs, srev = await self.store.get_prefix(self.keys.servers_prefix)
        for kv in skvs:
            self._apply_server(kv.key, kv.value, kv.mod_revision)
        for kv in tkvs:
            self._apply_task_put(kv.key, kv.value, kv.mod_revision)
        self.revision = max(trev, srev)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._watch(self.keys.machines_prefix, trev + 1, self._on_task)),
            loop.create_task(self._watch(self.keys.servers_prefix, srev + 1, self._on_server)),
        ]
        self.ready.set()
        log.info(
            "cache loaded", action="cache_loaded", tasks=len(self.tasks), servers=len(self.servers)
        )

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []

    async def _watch(self, prefix: str, start: int, apply: Callable[[WatchEvent], None]) -> None:
        async for ev in self.store.watch_prefix(prefix, start):
            try:
                apply(ev)
            except Exception:
                log.exception("could not apply watch event", action="watch_apply", key=ev.key)
            self.revision = max(self.revision, ev.mod_revision)

    def apply_write(self, kv: KV | None, key: str) -> None:
        """Apply a write this process just made, before its watch event arrives.

        Read-your-writes for API callers (an agent that completes an operation and asks for the
        next one at once must not get the old one). The watch event that follows is ignored
        because its revision is not newer.
        """
        if kv is None:
            self._apply_task_delete(key, 0)
        elif key.startswith(self.keys.machines_prefix):
            self._apply_task_put(key, kv.value, kv.mod_revision)
        elif key.startswith(self.keys.servers_prefix):
            self._apply_server(key, kv.value, kv.mod_revision)

    # ----- tasks --------------------------------------------------------------------------------

    def _on_task(self, ev: WatchEvent) -> None:
        if ev.kind == "resync":
            self._resync_tasks(ev.snapshot or [])
        elif ev.kind == "put":
            self._apply_task_put(ev.key, ev.value, ev.mod_revision)
        else:
            self._apply_task_delete(ev.key, ev.mod_revision)

    def _resync_tasks(self, snapshot: list[KV]) -> None:
        seen = set()
        for kv in snapshot:
            sn = self.keys.sn_from_task_key(kv.key)
            if sn:
                seen.add(sn)
                cur = self.tasks.get(sn)
                if cur is None or cur.mod_revision != kv.mod_revision:
                    self._apply_task_put(kv.key, kv.value, kv.mod_revision)
        for sn in list(self.tasks):
            if sn not in seen:
                self._apply_task_delete(self.keys.task(sn), 0)

    def _apply_task_put(self, key: str, value: Any, rev: int) -> None:
        sn = self.keys.sn_from_task_key(key)
        if sn is None:
            return
        try:
            if not isinstance(value, dict):
                raise ValueError("value is not a JSON object")
            task = Task.model_validate(value)
            if task.sn != sn:
                raise ValueError(f"task sn {task.sn!r} does not match its key")
        except (pydantic.ValidationError, ValueError) as e:
            reason = _short(e)
            if self.invalid.get(sn) != reason:
                log.warning("invalid task ignored", action="task_invalid", sn=sn, error=reason)
            self.invalid[sn] = reason
            old = self.tasks.pop(sn, None)
            if old is not None:
                self._emit(CacheEvent("task_deleted", sn, previous=old.task, mod_revision=rev))
            return
        self.invalid.pop(sn, None)
        old = self.tasks.get(sn)
        if old is not None and old.mod_revision >= rev:
            return  # already applied (list/watch overlap)
        self.tasks[sn] = Entry(task, rev)
        prev = old.task if old else None
        self._emit(CacheEvent("task_put", sn, task=task, previous=prev, mod_revision=rev))
        if prev is None or prev.status != task.status:
            if task.status == Status.APPROVED:
                self._emit(CacheEvent("approved", sn, task=task, previous=prev, mod_revision=rev))
            elif prev is not None:
                self._emit(
                    CacheEvent("status_changed", sn, task=task, previous=prev, mod_revision=rev)
                )

    def _apply_task_delete(self, key: str, rev: int) -> None:
        sn = self.keys.sn_from_task_key(key)
        if sn is None:
            return
        self.invalid.pop(sn, None)
        old = self.tasks.pop(sn, None)
        if old is not None:
            self._emit(CacheEvent("task_deleted", sn, previous=old.task, mod_revision=rev))

    # ----- servers ------------------------------------------------------------------------------

    def _on_server(self, ev: WatchEvent) -> None:
        if ev.kind == "resync":
            seen = set()
            for kv in ev.snapshot or []:
                sn = self._apply_server(kv.key, kv.value, kv.mod_revision)
                if sn:
                    seen.add(sn)
            for sn in set(self.servers) - seen:
                del self.servers[sn]
        elif ev.kind == "put":
            self._apply_server(ev.key, ev.value, ev.mod_revision)
        else:
            sn = self.keys.sn_from_server_key(ev.key)
            if sn:
                self.servers.pop(sn, None)

    def _apply_server(self, key: str, value: Any, rev: int) -> str | None:
        sn = self.keys.sn_from_server_key(key)
        if sn is None or not isinstance(value, dict):
            return None
        try:
            server = Server.model_validate(value)
        except pydantic.ValidationError as e:
            log.warning("invalid server record", action="server_invalid", sn=sn, error=_short(e))
            return None
        known = sn in self.servers
        if self._server_revs.get(sn, 0) >= rev > 0:
            return sn
        self._server_revs[sn] = rev
        self.servers[sn] = server
        kind: EventType = "server_updated" if known else "server_registered"
        self._emit(CacheEvent(kind, sn, server=server, mod_revision=rev))
        return sn


def _short(e: Exception) -> str:
    if isinstance(e, pydantic.ValidationError):
        parts = []
        for err in e.errors()[:3]:
            loc = ".".join(str(p) for p in err["loc"]) or "(task)"
            parts.append(f"{loc}: {err['msg']}")
        return "; ".join(parts)
    return str(e)
