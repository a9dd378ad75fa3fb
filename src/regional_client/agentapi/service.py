"""The agent protocol (SPEC §5, the seed's "flow 2"), without HTTP.

Reads come from the cache; every write is a compare-and-swap on the task or server key, applied
to the cache at once (read-your-writes). The HTTP layer (``agentapi/http.py``) only parses
requests and calls these methods.

Authentication (Ironic's model, tightened; docs/security.md): nothing secret is in a boot
config. A power action that network-boots the server opens an agent session
(``Task.agent_session``, written by the workflow); the first ``report`` of that boot, for an
``installing`` task, from the task's MAC and install IP, claims it and gets the token in the
answer; etcd keeps only its hash. Every later call must present the token and come from the same
address (and, on a directly attached segment, the same MAC). A second claim for the same boot is
refused (409) and audited; the next power action, cleanup or a new attempt ends the session.

A serial with no task may still ``report`` without a token — that is how a discovered server
enlists (as MAAS does); it can only create or refresh a ``discovered`` server record, within the
limits of ``api.agent`` (size, per-source rate, record count, etcd write budget).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, NoReturn

from regional_client.agentapi.discovery import Discovery, server_record
from regional_client.agentapi.neighbours import NeighbourTable
from regional_client.agentapi.progress import ProgressCoalescer
from regional_client.config.api import AgentLimits
from regional_client.core.audit import Audit
from regional_client.core.errors import (
    AuthError,
    Conflict,
    ForbiddenError,
    LimitExceeded,
    NotFound,
    ValidationError,
)
from regional_client.core.ids import normalize_mac
from regional_client.core.limits import Buckets, LimitHits, OncePer
from regional_client.core.logs import get_logger
from regional_client.core.metrics import Metrics
from regional_client.core.tokens import check_agent_token, new_token, token_hash
from regional_client.model import (
    ACTIVE,
    AgentSession,
    Event,
    OperationResult,
    Status,
    Task,
    now_iso,
)
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
        *,
        limits: AgentLimits | None = None,
        metrics: Metrics | None = None,
        neighbours: NeighbourTable | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.keys = keys
        self.cache = cache
        self.audit = audit
        self.limits = lim = limits or AgentLimits()
        self.neighbours = neighbours if neighbours is not None else NeighbourTable()
        self.clock = clock
        self.hits = LimitHits(metrics or Metrics(keys.idc), log)
        self._refusals = Buckets(lim.refusal_rate, lim.refusal_burst)
        self.discovery = Discovery(store, keys, cache, audit, lim, self.hits, clock)
        self._trail_once = OncePer(60.0)
        self.progress = ProgressCoalescer(
            self._write_progress, progress_interval, write_batch=self._write_progress_batch
        )

    async def start(self) -> None:
        self.progress.start()

    async def stop(self) -> None:
        await self.progress.stop()

    # ----- refusals -------------------------------------------------------------------------

    def _refuse(
        self, err: Exception, sn: str, ip: str | None, why: str, **details: Any
    ) -> NoReturn:
        """Audit a refusal and raise ``err``. A source refused too often gets 429 and no more
        audit records (the audit log and the per-task trail in etcd stay bounded); a task's
        trail gets at most one record per minute per kind of refusal."""
        source = ip or "-"
        if not self._refusals.take(source, self.clock()):
            self.hits.hit("agent_refusals", source, sn=sn)
            raise LimitExceeded("too many refused requests; slow down", limit="agent_refusals")
        known = self.cache.get_task(sn) is not None
        trail = known and self._trail_once(f"{sn}|{why}", self.clock())
        self.audit.record(
            f"agent:{sn}", "agent.refused", sn, result=why, sn=sn if trail else None,
            client=ip, **details,
        )  # fmt: skip
        log.warning("agent call refused", action="agent_refused", sn=sn, ip=ip or "", reason=why)
        raise err

    # ----- auth -----------------------------------------------------------------------------

    def authenticate(self, sn: str, token: str | None, ip: str | None) -> Task:
        """The task whose current agent session ``token`` belongs to, called from the address
        (and MAC) the session was claimed from; refusals are audited."""
        task = self.cache.get_task(sn)
        if task is None:
            self._refuse(NotFound(f"unknown serial number {sn!r}: no task for it", sn=sn),
                         sn, ip, "unknown serial")  # fmt: skip
        if task.status != Status.INSTALLING:
            self._refuse(
                ForbiddenError(f"task {sn} is {task.status.value}: the agent API is closed "
                               "outside installing", sn=sn),
                sn, ip, f"task {task.status.value}",
            )  # fmt: skip
        session = task.agent_session
        if session is None or not check_agent_token(token, session.token_sha256):
            self._refuse(AuthError(f"invalid agent token for {sn}", sn=sn), sn, ip,
                         "invalid agent token")  # fmt: skip
        self._check_origin(task, session, ip)
        return task

    def _check_origin(self, task: Task, session: AgentSession, ip: str | None) -> None:
        if ip is None or ip != session.ip:
            self._refuse(
                ForbiddenError(f"agent token of {task.sn} used from another address", sn=task.sn),
                task.sn, ip, "token used from another address", expected_ip=session.ip,
            )  # fmt: skip
        seen = self.neighbours.mac_of(ip) if self.limits.check_mac else None
        if seen is not None and session.mac and seen != session.mac:
            self._refuse(
                ForbiddenError(f"agent token of {task.sn} used from another MAC", sn=task.sn),
                task.sn, ip, "token used from another MAC", seen_mac=seen,
            )  # fmt: skip

    # ----- report ---------------------------------------------------------------------------

    async def report(
        self, sn: str, mac: str, hardware: dict[str, Any], ip: str | None, token: str | None
    ) -> dict[str, Any]:
        mac = normalize_mac(mac)
        size = self.discovery.check(hardware, ip)
        task = self.cache.get_task(sn)
        if task is None:
            return await self.discovery.report(sn, mac, hardware, ip, size)
        session = task.agent_session
        if task.status != Status.INSTALLING or session is None:
            # No token outside installing, nor before the power step opened this boot's
            # session; nothing is written (so no inventory can be planted): ask again later.
            return {"result": "ok", "status": "waiting"}
        answer: dict[str, Any] = {"result": "ok", "status": "installing"}
        if session.claimed and token is None:
            await self._second_claim(sn, session.boot, ip)
        if session.claimed:
            self.authenticate(sn, token, ip)  # a re-report: the token of this boot, same origin
        else:
            answer["token"] = await self._claim(task, session, mac, ip)
        await self._write_report(task, sn, mac, hardware, ip)
        self.audit.record(f"agent:{sn}", "agent.report", sn, sn=sn, mac=mac, ip=ip,
                          state="installing", claimed="token" in answer)  # fmt: skip
        log.info("agent reported", action="agent_report", sn=sn, mac=mac, ip=ip or "",
                 state="installing")  # fmt: skip
        return answer

    async def _expected_ip(self, task: Task) -> str | None:
        """The install IP DHCP gives this server: the task's, else its lease (dynamic pool)."""
        if task.network.ip is not None:
            return str(task.network.ip)
        kv = await self.store.get(self.keys.lease(task.mac))
        if kv is not None and isinstance(kv.value, dict) and kv.value.get("ip"):
            return str(kv.value["ip"])
        return None

    async def _claim(self, task: Task, session: AgentSession, mac: str, ip: str | None) -> str:
        """Issue this boot's token to the first report from the task's MAC and install IP."""
        sn = task.sn
        expected = await self._expected_ip(task)
        seen = self.neighbours.mac_of(ip) if ip and self.limits.check_mac else None
        why = None
        if mac != task.mac or (seen is not None and seen != task.mac):
            why = "claim from another MAC"
        elif ip is None or (expected is not None and ip != expected):
            why = "claim from another address"
        if why is not None:
            await self._count_refused(sn, session.boot)
            self._refuse(ForbiddenError(f"{why} than the task's", sn=sn), sn, ip, why,
                         mac=mac, expected_ip=expected)  # fmt: skip
        token = new_token()
        claimed = {"v": False}

        def fn(old: dict[str, Any] | None) -> dict[str, Any]:
            if old is None:
                raise NotFound(f"task {sn} was deleted", sn=sn)
            cur = old.get("agent_session") or {}
            claimed["v"] = False
            if old.get("status") != "installing" or cur.get("boot") != session.boot:
                return old  # the boot changed meanwhile: nothing claimed
            if cur.get("token_sha256"):
                return old  # another report won the race
            cur.update(token_sha256=token_hash(token), mac=mac, ip=ip, claimed_at=now_iso())
            old["agent_session"] = cur
            claimed["v"] = True
            return old

        key = self.keys.task(sn)
        kv = await self.store.update(key, fn)
        self.cache.apply_write(kv, key)
        if not claimed["v"]:
            await self._second_claim(sn, session.boot, ip)
        self.audit.record(f"agent:{sn}", "agent.token_issued", sn, sn=sn, mac=mac, ip=ip,
                          boot=session.boot)  # fmt: skip
        return token

    async def _second_claim(self, sn: str, boot: int, ip: str | None) -> NoReturn:
        await self._count_refused(sn, boot)
        self._refuse(Conflict(f"an agent token was already issued for this boot of {sn}", sn=sn),
                     sn, ip, "second claim for this boot")  # fmt: skip

    async def _count_refused(self, sn: str, boot: int) -> None:
        """Count a refused claim in the session (the operator sees it in the task)."""

        def fn(old: dict[str, Any] | None) -> dict[str, Any]:
            if old is None:
                raise NotFound(f"task {sn} was deleted", sn=sn)
            cur = old.get("agent_session")
            if isinstance(cur, dict) and cur.get("boot") == boot:
                cur["refused"] = int(cur.get("refused") or 0) + 1
            return old

        key = self.keys.task(sn)
        try:
            kv = await self.store.update(key, fn)
        except NotFound:
            return
        self.cache.apply_write(kv, key)

    async def _write_report(
        self, task: Task, sn: str, mac: str, hardware: dict[str, Any], ip: str | None
    ) -> None:
        at = now_iso()
        skey = self.keys.server(sn)
        kv = await self.store.update(
            skey,
            server_record(sn, mac, hardware, ip, at, "installing", task.task_id or task.sn),
            create=True,
        )
        self.cache.apply_write(kv, skey)

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

    # ----- endpoints ------------------------------------------------------------------------

    def in_install_queue(self, sn: str, token: str | None, ip: str | None) -> dict[str, Any]:
        task = self.authenticate(sn, token, ip)
        return {"result": task.status in ACTIVE}

    def next_operation(self, sn: str, token: str | None, ip: str | None) -> dict[str, Any]:
        task = self.authenticate(sn, token, ip)
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

    def hardware_config(self, sn: str, token: str | None, ip: str | None) -> dict[str, Any]:
        task = self.authenticate(sn, token, ip)
        return {"scripts": [s.model_dump(mode="json") for s in task.hardware_scripts]}

    async def operation_complete(
        self,
        sn: str,
        token: str | None,
        ip: str | None,
        operation: str,
        success: bool,
        message: str = "",
        exit_code: int | None = None,
        output: str | None = None,
    ) -> dict[str, Any]:
        task = self.authenticate(sn, token, ip)
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
                old.pop("agent_session", None)  # failed: no agent session any more
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
        self,
        sn: str,
        token: str | None,
        ip: str | None,
        operation: str | None,
        percent: float,
        message: str,
    ) -> dict[str, Any]:
        task = self.authenticate(sn, token, ip)
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

