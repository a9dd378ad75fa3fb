"""The workflow's writes to etcd: each one a compare-and-swap of a pure change.

:meth:`Recorder.update` reads the stored task, applies a change to it as a model, writes it if
its revision has not moved (``EtcdStore.update`` retries otherwise) and applies the result to
the cache at once (read-your-writes). A task that is gone raises
:class:`~regional_client.workflow.stop.Aborted`; so does one that is no longer ours, for the
writes that need it to be (step marks, workflow state).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from regional_client.core.audit import Audit
from regional_client.core.errors import NotFound, ProvisionError, ValidationError
from regional_client.model import ACTIVE, StatePart, Step, StepStatus, Task, now_iso
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from regional_client.tasks.cache import Cache
from regional_client.workflow.stop import Aborted


class Recorder:
    def __init__(
        self, store: EtcdStore, keys: Keys, cache: Cache, audit: Audit, instance_id: str
    ) -> None:
        self.store = store
        self.keys = keys
        self.cache = cache
        self.audit = audit
        self.instance_id = instance_id

    def current(self, sn: str) -> Task:
        """The task as last seen (the cache has our own writes already)."""
        task = self.cache.get_task(sn)
        if task is None:
            raise Aborted
        return task

    async def update(self, sn: str, change: Callable[[Task], None]) -> Task:
        """CAS-apply ``change`` to the stored task (as a model) and to the cache."""
        key = self.keys.task(sn)
        out: dict[str, Task] = {}

        def fn(old: dict[str, Any] | None) -> dict[str, Any]:
            if old is None:
                raise Aborted
            t = Task.model_validate(old)
            change(t)
            t.updated_at = now_iso()
            out["t"] = t
            return t.to_json()

        try:
            kv = await self.store.update(key, fn)
        except (NotFound, ValidationError):
            raise Aborted from None
        self.cache.apply_write(kv, key)
        return out["t"]

    def _ours(self, t: Task) -> None:
        if t.status not in ACTIVE or t.owner != self.instance_id:
            raise Aborted

    async def mark(self, sn: str, name: str, status: StepStatus, error: str | None = None) -> None:
        """Record a step as running (one more attempt) or finished (done/failed, ``error``)."""

        def fn(t: Task) -> None:
            self._ours(t)
            st = t.step(name)
            if st is None:
                st = Step(name=name)
                t.steps.append(st)
            st.status = status
            if status == "running":
                st.attempts += 1
                st.started_at = now_iso()
                st.error = None
            else:
                st.finished_at = now_iso()
                st.error = error

        await self.update(sn, fn)
        if status != "running":
            self.audit.record(self.instance_id, f"step.{name}", sn,
                              result="ok" if not error else error[:300], sn=sn)  # fmt: skip

    async def skip(self, sn: str, name: str, why: str) -> None:
        def fn(t: Task) -> None:
            st = t.step(name)
            if st is not None:
                st.status, st.finished_at, st.error = "skipped", now_iso(), why

        await self.update(sn, fn)

    async def set_state(self, sn: str, part: StatePart) -> None:
        """Replace one part of ``workflow_state`` (the others are left as they are)."""

        def fn(t: Task) -> None:
            self._ours(t)
            t.workflow_state.put(part)

        await self.update(sn, fn)

    async def open_agent_session(self, sn: str) -> None:
        """Call right before every power action that network-boots the server (SPEC §5): the
        last boot's agent token stops working and the next first report claims a new one."""

        def fn(t: Task) -> None:
            self._ours(t)
            t.open_agent_session()

        t = await self.update(sn, fn)
        boot = t.agent_session.boot if t.agent_session else 0
        self.audit.record(self.instance_id, "agent.session_open", sn, sn=sn, boot=boot)

    async def end_agent_session(self, sn: str) -> None:
        """Call right before a power action that boots the server from its disk (``verify``)
        and wherever no ramdisk agent may act any more: every agent token stops working."""

        def fn(t: Task) -> None:
            self._ours(t)
            t.end_agent_session()

        await self.update(sn, fn)
        self.audit.record(self.instance_id, "agent.session_end", sn, sn=sn)

    async def progress(self, sn: str, percent: float, message: str) -> None:
        def fn(t: Task) -> None:
            t.progress.percent = percent
            t.progress.message = message
            t.progress.operation = None
            t.progress.updated_at = now_iso()

        await self.update(sn, fn)

    async def mark_server(self, sn: str, state: str) -> None:
        """The server record's state (best effort: an error leaves it as it was)."""
        key = self.keys.server(sn)

        def fn(old: dict[str, Any] | None) -> dict[str, Any]:
            rec = old or {"sn": sn, "first_seen": now_iso()}
            rec["state"] = state
            rec["last_seen"] = now_iso()
            return rec

        with contextlib.suppress(ProvisionError):
            kv = await self.store.update(key, fn, create=True)
            self.cache.apply_write(kv, key)
