"""The agent protocol (SPEC §5, the seed's "flow 2"), without HTTP.

Reads come from the cache; every write is a compare-and-swap on the task or server key, applied
to the cache at once (read-your-writes). The HTTP layer (``api/agent.py``) only parses requests
and calls these methods.

Authentication: a task's agent presents the task's ``agent_token``. A serial with no task may
still ``report`` without a token — that is how a discovered server enlists (as MAAS does); it can
only create or refresh a ``discovered`` server record, never touch a task.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from regional_client.agentapi.progress import ProgressCoalescer
from regional_client.core.audit import Audit
from regional_client.core.errors import AuthError, NotFound, ValidationError
from regional_client.core.ids import normalize_mac
from regional_client.core.logs import get_logger
from regional_client.core.tokens import check_agent_token, new_token
from regional_client.model import ACTIVE, Event, OperationResult, Status, Task, now_iso
from regional_client.model.states import FINAL
from regional_client.store.etcd import KV, EtcdStore
from regional_client.store.keys import Keys
from regional_client.tasks.cache import Cache

log = get_logger("agent_api")

NONE = "none"
REBOOT = "reboot"


class AgentService:
    def __init__(
        self,
        store: EtcdStore,
        keys: Keys,
        cache: Cache,
        audit: Audit,
        progress_interval: float = 1.0,
    ) -> None:
        self.store = store
        self.keys = keys
        self.cache = cache
        self.audit = audit
        self._bg: set[asyncio.Task[None]] = set()
        self.progress = ProgressCoalescer(
            self._write_progress, progress_interval, write_batch=self._write_progress_batch
        )

    async def start(self) -> None:
        self.cache.subscribe(self._on_event)
        self.progress.start()

    async def stop(self) -> None:
        await self.progress.stop()

    # ----- tokens -------------------------------------------------------------------------------

    def _on_event(self, ev: Any) -> None:
        task = ev.task
        if ev.type == "task_put" and task and not task.agent_token and task.status not in FINAL:
            t = asyncio.get_running_loop().create_task(self._assign_token_safely(ev.sn))
            self._bg.add(t)
            t.add_done_callback(self._bg.discard)

    async def _assign_token_safely(self, sn: str) -> None:
        try:
            await self.ensure_agent_token(sn)
        except Exception as e:
            log.warning("could not assign agent token", action="token_assign", sn=sn, error=str(e))

    async def ensure_agent_token(self, sn: str) -> str:
        """Give the task a random agent token if it has none (CAS: every instance agrees)."""
        key = self.keys.task(sn)

        def fn(old: dict[str, Any] | None) -> dict[str, Any]:
            if old is None:
                raise NotFound(f"no task for serial {sn}", sn=sn)
            if not old.get("agent_token"):
                old["agent_token"] = new_token()
                old["updated_at"] = now_iso()
            return old

        kv = await self.store.update(key, fn)
        assert kv is not None
        self.cache.apply_write(kv, key)
        return str(kv.value["agent_token"])

    # ----- auth ---------------------------------------------------------------------------------

    def authenticate(self, sn: str, token: str | None) -> Task:
        task = self.cache.get_task(sn)
        if task is None:
            raise NotFound(f"unknown serial number {sn!r}: no task for it", sn=sn)
        if token is None or not check_agent_token(token, task.agent_token):
            raise AuthError(f"invalid agent token for {sn}", sn=sn)
        return task

    # ----- endpoints ----------------------------------------------------------------------------

    async def report(
        self, sn: str, mac: str, hardware: dict[str, Any], ip: str | None, token: str | None
    ) -> dict[str, Any]:
        mac = normalize_mac(mac)
        task = self.cache.get_task(sn)
        if task is not None:
            self.authenticate(sn, token)
        active = task is not None and task.status in ACTIVE
        state = "installing" if active else "discovered"
        if task is not None and task.status == Status.COMPLETED:
            state = "installed"
        at = now_iso()

        def server_fn(old: dict[str, Any] | None) -> dict[str, Any]:
            rec = old or {"sn": sn, "first_seen": at, "macs": []}
            macs = [m for m in rec.get("macs", []) if m != mac]
            rec["macs"] = [mac, *macs]
            rec["hardware"] = hardware
            rec["last_seen"] = at
            rec["state"] = state
            if ip:
                rec["ip"] = ip
            if task is not None:
                rec["task_id"] = task.task_id or task.sn
            return rec

        skey = self.keys.server(sn)
        kv = await self.store.update(skey, server_fn, create=True)
        self.cache.apply_write(kv, skey)
        if active:

            def task_fn(old: dict[str, Any] | None) -> dict[str, Any]:
                if old is None:
                    raise NotFound(f"task {sn} was deleted", sn=sn)
                agent = old.setdefault("agent", {})
                agent.setdefault("reported_at", at)
                agent["last_seen"] = at
                if ip:
                    agent["ip"] = ip
                old["updated_at"] = at
                return old

            tkey = self.keys.task(sn)
            tkv = await self.store.update(tkey, task_fn)
            self.cache.apply_write(tkv, tkey)
        self.audit.record(f"agent:{sn}", "agent.report", sn, sn=sn, mac=mac, ip=ip, state=state)
        log.info("agent reported", action="agent_report", sn=sn, mac=mac, ip=ip or "", state=state)
        return {"result": "ok", "status": state}

    def in_install_queue(self, sn: str, token: str | None) -> dict[str, Any]:
        task = self.authenticate(sn, token)
        return {"result": task.status in ACTIVE}

    def next_operation(self, sn: str, token: str | None) -> dict[str, Any]:
        task = self.authenticate(sn, token)
        if task.status not in ACTIVE:
            return {"operation": NONE, "params": {}}
        op = task.next_operation()
        if op is None:
            return {"operation": REBOOT, "params": {}}
        return {"operation": op, "params": self._params(task, op)}

    @staticmethod
    def _params(task: Task, op: str) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if op == "os_install":
            params = {
                "os_type": task.os_type,
                "os_version": task.os_version,
                "hostname": task.hostname,
                "network": task.network.model_dump(mode="json", exclude_none=True),
            }
        elif op == "hardware_config":
            params = {"scripts": len(task.hardware_scripts)}
        params.update(task.operation_params.get(op, {}))
        result = task.results.get(op)
        params["attempt"] = (result.attempts + 1) if result else 1
        return params

    def hardware_config(self, sn: str, token: str | None) -> dict[str, Any]:
        task = self.authenticate(sn, token)
        return {"scripts": [s.model_dump(mode="json") for s in task.hardware_scripts]}

    async def operation_complete(
        self,
        sn: str,
        token: str | None,
        operation: str,
        success: bool,
        message: str = "",
        exit_code: int | None = None,
        output: str | None = None,
    ) -> dict[str, Any]:
        task = self.authenticate(sn, token)
        if operation not in task.operations:
            raise ValidationError(
                f"operation {operation!r} is not in the task's operations {task.operations}",
                field="operation",
            )
        await self.progress.flush(sn)
        outcome: dict[str, Any] = {"recorded": False}
        at = now_iso()

        def fn(old: dict[str, Any] | None) -> dict[str, Any]:
            if old is None:
                raise NotFound(f"task {sn} was deleted", sn=sn)
            cur = Task.model_validate(old)
            outcome["recorded"] = False
            if cur.status not in ACTIVE:
                raise ValidationError(
                    f"task {sn} is {cur.status.value}; no operation can complete", sn=sn
                )
            prev = cur.results.get(operation)
            if prev is not None and prev.status == "done":
                return old  # a racing duplicate: the first completion stands
            attempts = (prev.attempts if prev else 0) + 1
            status: Literal["done", "failed"] = "done" if success else "failed"
            res = OperationResult(
                status=status, attempts=attempts, message=message[:4000],
                exit_code=exit_code, finished_at=at,
            )  # fmt: skip
            rec = res.model_dump(mode="json")
            if output:
                rec["output_tail"] = output[-8000:]  # the end says why; the agent keeps the rest
            old.setdefault("results", {})[operation] = rec
            old["updated_at"] = at
            if not success and attempts > cur.operation_retries:
                cur.transition(Event.FAIL, f"agent:{sn}", f"operation {operation} failed")
                old["status"] = cur.status.value
                old["history"] = cur.history
                old["error"] = f"agent: operation {operation} failed: {message}"[:2000]
            outcome["recorded"] = True
            outcome["status"] = status
            return old

        key = self.keys.task(sn)
        kv = await self.store.update(key, fn)
        self.cache.apply_write(kv, key)
        result = "ok" if success else f"failed: {message}"[:200]
        self.audit.record(
            f"agent:{sn}", "agent.operation_complete", sn, result=result, sn=sn,
            operation=operation, duplicate=not outcome["recorded"],
        )  # fmt: skip
        log.info(
            "operation complete", action="operation_complete", sn=sn, operation=operation,
            success=success, duplicate=not outcome["recorded"],
        )  # fmt: skip
        return {"result": "ok", "duplicate": not outcome["recorded"]}

    def report_progress(
        self, sn: str, token: str | None, operation: str | None, percent: float, message: str
    ) -> dict[str, Any]:
        task = self.authenticate(sn, token)
        self.progress.submit(
            task.sn,
            {
                "operation": operation,
                "percent": percent,
                "message": message[:500],
                "updated_at": now_iso(),
            },
        )
        return {"result": "ok"}

    async def _write_progress_batch(self, items: list[tuple[str, dict[str, Any]]]) -> list[str]:
        """Many tasks' progress in one etcd transaction, CAS against the cached revisions.

        Returns the serials left unwritten (the whole batch when any task changed meanwhile);
        the coalescer then writes those one by one with a fresh read.
        """
        writes, left = [], []
        for sn, progress in items:
            entry = self.cache.tasks.get(sn)
            if entry is None:
                left.append(sn)
                continue
            data = entry.task.to_json()
            data["progress"] = {k: v for k, v in progress.items() if v is not None}
            writes.append((self.keys.task(sn), data, entry.mod_revision))
        rev = await self.store.put_many_if(writes) if writes else None
        if rev is None:
            return [sn for sn, _ in items]
        for key, data, _ in writes:
            self.cache.apply_write(KV(key, data, rev, 0), key)
        return left

    async def _write_progress(self, sn: str, progress: dict[str, Any]) -> None:
        """One write per flush: try a CAS against the cached revision first (one round trip);
        only if another writer got there first, fall back to read-modify-write."""
        key = self.keys.task(sn)
        value = {k: v for k, v in progress.items() if v is not None}
        entry = self.cache.tasks.get(sn)
        if entry is not None:
            data = entry.task.to_json()
            data["progress"] = value
            rev = await self.store.put_if(key, data, entry.mod_revision)
            if rev is not None:
                self.cache.apply_write(KV(key, data, rev, 0), key)
                return

        def fn(old: dict[str, Any] | None) -> dict[str, Any]:
            if old is None:
                raise NotFound(f"task {sn} was deleted", sn=sn)
            old["progress"] = value
            return old

        kv = await self.store.update(key, fn)
        self.cache.apply_write(kv, key)
