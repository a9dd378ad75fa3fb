"""The install workflow (SPEC §4, the seed's "flow 1"), durable and resumable.

An ``approved`` task of this IDC is claimed with a compare-and-swap to ``installing`` (owner =
this instance), then the steps run in order: switch → pxe → dhcp → power → agent → cleanup.

Durability rules:

* every step is recorded in ``task.steps`` (running, attempts, started/finished, error) before
  and after it runs, and every device change is preceded by a write of what must be undone
  (``task.workflow_state``: the port and its previous config, the power intent); so a restart
  resumes at the first unfinished step and a failure knows exactly what to roll back;
* a step that was interrupted is run again — each is idempotent — except the power reset: if
  its intent was recorded but not its completion, it is taken as done (a second reset would be
  noticed by the server); the agent timeout's single extra power cycle covers the case where it
  had not happened;
* a step that gives up (timeout, retries exhausted) fails the task with ``error`` naming the
  step and cause, after undoing what earlier steps changed; deleting a task undoes the same.

Tasks owned by an instance whose heartbeat has expired are taken over (CAS on ``owner``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from regional_client.config.workflow import WorkflowConfig
from regional_client.core.audit import Audit
from regional_client.core.errors import InvalidTransition, ProvisionError, StepFailed
from regional_client.core.logs import get_logger
from regional_client.core.metrics import Metrics
from regional_client.model import (
    DhcpPart,
    Event,
    PowerPart,
    PxePart,
    Status,
    Step,
    SwitchPart,
    Task,
    WorkflowState,
    now_iso,
)
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from regional_client.tasks.boot_activity import BootActivity
from regional_client.tasks.cache import Cache, CacheEvent
from regional_client.workflow.devices import Devices
from regional_client.workflow.record import Recorder
from regional_client.workflow.stop import Aborted, Shutdown

log = get_logger("workflow")

STEPS = ("switch", "pxe", "dhcp", "power", "agent", "cleanup")


def same_vlans(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two port configs put the port in the same VLANs (descriptions aside)."""
    key = ("mode", "vlans", "native_vlan")
    return all((a.get(k) or None) == (b.get(k) or None) for k in key)


class Workflow:
    def __init__(
        self,
        config: WorkflowConfig,
        store: EtcdStore,
        keys: Keys,
        cache: Cache,
        devices: Devices,
        metrics: Metrics,
        audit: Audit,
        instance_id: str,
        ensure_token: Callable[[str], Awaitable[str]],
        boot_activity: BootActivity | None = None,
    ) -> None:
        self.config = config
        self.boot_activity = boot_activity
        self.store = store
        self.keys = keys
        self.cache = cache
        self.devices = devices
        self.audit = audit
        self.instance_id = instance_id
        self.ensure_token = ensure_token
        self._slots = asyncio.Semaphore(config.max_concurrent_installs)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._cleanups: set[asyncio.Task[None]] = set()
        self._changed: dict[str, asyncio.Event] = {}
        self._stopping = False
        self._bg: list[asyncio.Task[None]] = []
        self._step_seconds = metrics.histogram(
            "regional_client_step_seconds",
            "Duration of workflow steps",
            ["step"],
            buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
        )
        self._step_failures = metrics.counter(
            "regional_client_step_failures_total", "Workflow steps that gave up", ["step"]
        )
        self._idc = metrics.idc
        self.record = Recorder(store, keys, cache, audit, instance_id)

    # ----- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self.cache.subscribe(self._on_event)
        for entry in list(self.cache.tasks.values()):
            t = entry.task
            if t.status == Status.FAILED and t.owner == self.instance_id and t.workflow_state.any():
                # Failed (e.g. by the agent) just before a crash, not yet rolled back: undo now.
                self._background(self._rollback_failed(t))
            self._consider(t)
        self._bg.append(asyncio.get_running_loop().create_task(self._takeover_loop()))

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming; let in-flight device calls finish (up to ``grace``); stay resumable."""
        self._stopping = True
        for ev in self._changed.values():
            ev.set()
        for t in self._bg:
            t.cancel()
        pending = [*self._running.values(), *self._cleanups]
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            for t in still:
                t.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*still, return_exceptions=True)
        for t in self._bg:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    def running(self) -> list[str]:
        return sorted(self._running)

    # ----- events ---------------------------------------------------------------------------

    def _on_event(self, ev: CacheEvent) -> None:
        ch = self._changed.get(ev.sn)
        if ch is not None:
            ch.set()
        if ev.type == "task_deleted":
            self._on_deleted(ev.sn, ev.previous)
        elif ev.type in ("approved", "task_put") and ev.task is not None:
            self._consider(ev.task)

    def _consider(self, task: Task) -> None:
        if self._stopping or self._busy(task.sn):
            return
        mine = task.status == Status.INSTALLING and task.owner == self.instance_id
        if task.status == Status.APPROVED or mine:
            self._spawn(task.sn)

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._cleanups.add(t)
        t.add_done_callback(self._cleanups.discard)

    def _spawn(self, sn: str) -> None:
        t = asyncio.get_running_loop().create_task(self._run(sn))
        self._running[sn] = t

        def forget(done: asyncio.Task[None]) -> None:
            if self._running.get(sn) is done:  # not a newer run of the same serial
                del self._running[sn]

        t.add_done_callback(forget)

    def _busy(self, sn: str) -> bool:
        """A run of ``sn`` is in progress (a finished one whose callback is still queued is
        not: an approval arriving in that instant must start a new run)."""
        run = self._running.get(sn)
        return run is not None and not run.done()

    def _on_deleted(self, sn: str, previous: Task | None) -> None:
        run = self._running.get(sn)
        if run is not None:
            run.cancel()
        if previous is not None and previous.workflow_state.any():
            self._background(self._cleanup_deleted(previous, run))

    # ----- one task -------------------------------------------------------------------------

    async def _run(self, sn: str) -> None:
        try:
            async with self._slots:
                if self._stopping:
                    return
                task = await self._claim(sn)
                if task is None:
                    return
                await self._steps(task)
        except (Aborted, Shutdown, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("workflow crashed", action="workflow_error", sn=sn)

    async def _claim(self, sn: str) -> Task | None:
        """CAS approved → installing with us as owner; or resume a task we already own."""
        task = self.cache.get_task(sn)
        if task is None:
            return None
        if task.status == Status.INSTALLING and task.owner == self.instance_id:
            log.info("resuming task", action="resume", sn=sn, mac=task.mac)
            return task

        def fn(t: Task) -> None:
            if t.status != Status.APPROVED:
                raise Aborted
            installed = t.failed_in_cleanup_after_install()
            t.transition(
                Event.CLAIM,
                self.instance_id,
                "claimed by regional client" + ("; cleanup only" if installed else ""),
            )
            t.owner = self.instance_id
            t.claimed_at = now_iso()
            t.error = None
            if installed:
                # A retry after a failed cleanup: the OS is installed, the earlier steps' state
                # (the port's previous config above all) is kept; only cleanup runs again.
                cleanup = t.step("cleanup")
                assert cleanup is not None
                cleanup.status, cleanup.error = "pending", None
                cleanup.started_at = cleanup.finished_at = None
                t.progress.message = "claimed: cleanup only"
                return
            t.steps = [Step(name=s) for s in STEPS]
            t.workflow_state = WorkflowState()
            t.results = {}
            t.agent.reported_at = None
            t.progress.percent = 0
            t.progress.message = "claimed"

        try:
            task = await self.record.update(sn, fn)
        except Aborted:
            return None
        self.audit.record(self.instance_id, "task.claim", sn, sn=sn)
        log.info("task claimed", action="claim", sn=sn, mac=task.mac)
        return task

    async def _steps(self, task: Task) -> None:
        sn = task.sn
        await self.ensure_token(sn)
        runners: dict[str, Callable[[Task], Awaitable[None]]] = {
            "switch": self._switch, "pxe": self._pxe, "dhcp": self._dhcp,
            "power": self._power, "agent": self._agent, "cleanup": self._cleanup,
        }  # fmt: skip
        for name in STEPS:
            task = self.record.current(sn)
            step = task.step(name)
            if step is not None and step.status in ("done", "skipped"):
                continue
            try:
                await self._run_step(task, name, runners[name])
            except StepFailed as e:
                await self._fail(sn, name, e.message)
                return

    async def _run_step(self, task: Task, name: str, fn: Callable[[Task], Awaitable[None]]) -> None:
        sn = task.sn
        # Cleanup only puts things back: worth more patience than a step that changes them.
        retries = {"agent": 0, "cleanup": self.config.step_retries + 2}.get(
            name, self.config.step_retries
        )
        timeout = {
            "power": self.config.power_timeout,
            "agent": None,  # the agent step keeps its own deadline (persisted)
        }.get(name, self.config.step_timeout)
        started = time.monotonic()
        attempt = 0
        while True:
            if self._stopping:
                raise Shutdown
            attempt += 1
            await self.record.mark(sn, name, "running")
            try:
                if timeout:
                    await asyncio.wait_for(fn(self.record.current(sn)), timeout)
                else:
                    await fn(self.record.current(sn))
            except (Aborted, Shutdown, asyncio.CancelledError):
                raise
            except (TimeoutError, ProvisionError) as e:
                cause = f"timed out after {timeout:g}s" if isinstance(e, TimeoutError) else str(e)
                if isinstance(e, StepFailed) or attempt > retries:
                    self._step_failures.labels(self._idc, name).inc()
                    await self.record.mark(sn, name, "failed", error=cause)
                    raise StepFailed(cause, step=name) from None
                log.warning(
                    "step failed; retrying", action="step_retry", sn=sn, step=name,
                    attempt=attempt, error=cause,
                )  # fmt: skip
                await asyncio.sleep(self.config.retry_backoff * 2 ** (attempt - 1))
                continue
            self._step_seconds.labels(self._idc, name).observe(time.monotonic() - started)
            step = self.record.current(sn).step(name)
            if step is None:
                raise Aborted  # reset under us (failed, then retried): this run is stale
            if step.status == "running":
                await self.record.mark(sn, name, "done")
            return

    # ----- the steps ------------------------------------------------------------------------

    async def _switch(self, task: Task) -> None:
        if self.devices.switch is None:
            return await self.record.skip(task.sn, "switch", "switch automation disabled")
        st = (task.workflow_state.switch or SwitchPart()).model_copy()
        if not st.port:
            st.switch, st.port = await self.devices.locate_port(task)
            await self.record.set_state(task.sn, st)
        cfg = self.devices.install_port_config(task, st.switch)
        await self.record.progress(task.sn, 5, f"switch {st.switch} port {st.port} → {cfg}")
        # Written before the change: a crash mid-change must still restore the port. The
        # previous config is read inside the change's own session (no extra session) and
        # recorded right after; if a crash loses it, cleanup falls back to the production VLAN.
        st.changed = True
        await self.record.set_state(task.sn, st)
        previous = await self.devices.set_port(st.switch, st.port, cfg, task.sn)
        if st.previous is None and previous is not None and not same_vlans(previous, cfg):
            st.previous = previous
            await self.record.set_state(task.sn, st)

    async def _pxe(self, task: Task) -> None:
        if self.devices.pxe is None:
            return await self.record.skip(task.sn, "pxe", "PXE config generation disabled")
        await self.record.set_state(task.sn, PxePart(written=True))
        await self.devices.pxe_write(task)
        await self.record.progress(task.sn, 10, "PXE configuration written")

    async def _dhcp(self, task: Task) -> None:
        if self.devices.dhcp is None:
            return await self.record.skip(task.sn, "dhcp", "DHCP disabled")
        if task.network.ip is None:
            return await self.record.skip(task.sn, "dhcp", "no install IP: dynamic pool")
        await self.record.set_state(task.sn, DhcpPart(bound=str(task.network.ip)))
        await self.devices.dhcp_bind(task)
        await self.record.progress(task.sn, 15, f"DHCP binding {task.mac} → {task.network.ip}")

    async def _power(self, task: Task) -> None:
        if self.devices.bmc is None:
            why = "BMC control disabled: power on by hand"
            return await self.record.skip(task.sn, "power", why)
        st = (task.workflow_state.power or PowerPart()).model_copy()
        if st.intent and not st.done:
            # Interrupted between intent and confirmation: never reset twice.
            log.warning("power step interrupted; not repeating the reset", action="power_resume",
                        sn=task.sn)  # fmt: skip
            st.done, st.assumed, st.at = True, True, st.intent
            await self.record.set_state(task.sn, st)
            return
        if st.done:
            return
        await self.devices.boot_device(task, "pxe", persistent=False)
        st.intent = now_iso()
        await self.record.set_state(task.sn, st)
        st.action = await self.devices.power_on_or_reset(task)
        st.done, st.at = True, now_iso()
        st.deadline, st.booted = time.time() + self.config.agent_timeout, time.time()
        await self.record.set_state(task.sn, st)
        msg = f"{st.action} with PXE boot: waiting for the agent"
        await self.record.progress(task.sn, 20, msg)

    async def _agent(self, task: Task) -> None:
        """Wait until the agent has completed every operation (getNextOperation → reboot)."""
        sn = task.sn
        power = (task.workflow_state.power or PowerPart()).model_copy()
        deadline = float(power.deadline or time.time() + self.config.agent_timeout)
        if not power.deadline:
            power.deadline = deadline
            await self.record.set_state(sn, power)
        ch = self._changed.setdefault(sn, asyncio.Event())
        try:
            while True:
                task = self.record.current(sn)
                if task.status == Status.FAILED and task.owner == self.instance_id:
                    await self._rollback_failed(task)  # the agent reported a failed operation
                    raise Aborted
                if task.status != Status.INSTALLING:
                    raise Aborted
                if task.next_operation() is None and task.agent.reported_at:
                    return
                if self._stopping:
                    raise Shutdown
                left = deadline - time.time()
                if left <= 0:
                    deadline = await self._agent_timeout(task, power)
                    continue
                quiet = self._boot_quiet_for(task, power)
                if quiet is not None:
                    deadline = await self._boot_stalled(task, power, quiet)
                    continue
                ch.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ch.wait(), min(left, 5.0))
        finally:
            self._changed.pop(sn, None)

    async def _agent_timeout(self, task: Task, power: PowerPart) -> float:
        what = "report" if not task.agent.reported_at else "finish its operations"
        return await self._recycle(
            task, power, "agent_timeout", "agent silent",
            f"agent did not {what} within {self.config.agent_timeout:g}s",
        )  # fmt: skip

    def _boot_quiet_for(self, task: Task, power: PowerPart) -> float | None:
        """Seconds the server has been quiet after network-boot activity since its last power
        action, when that exceeds ``boot_stall_timeout`` and its agent never reported."""
        limit = self.config.boot_stall_timeout
        if not limit or self.boot_activity is None or task.agent.reported_at:
            return None
        last = self.boot_activity.last(task.mac)
        booted = float(power.booted or 0)
        if last is None or not booted or last < booted:
            return None  # no activity seen since this boot began: only agent_timeout applies
        quiet = time.time() - last
        return quiet if quiet >= limit else None

    async def _boot_stalled(self, task: Task, power: PowerPart, quiet: float) -> float:
        return await self._recycle(
            task, power, "boot_stalled", "boot stalled",
            f"the server network-booted, then stayed quiet for {quiet:.0f}s "
            f"(boot_stall_timeout {self.config.boot_stall_timeout:g}s) and its agent never "
            f"reported",
        )  # fmt: skip

    async def _recycle(
        self, task: Task, power: PowerPart, action: str, short: str, why: str
    ) -> float:
        """The one extra power cycle a boot gets; after it (or without a BMC) the step fails."""
        if power.recycled or self.devices.bmc is None:
            raise StepFailed(
                f"{why} (after {'a second power cycle' if power.recycled else 'power on'})"
            )
        log.warning(f"{short}: power cycling once more", action=action, sn=task.sn, reason=why)
        power.recycled, power.recycle_reason = now_iso(), action
        await self.record.set_state(task.sn, power)
        await self.devices.boot_device(task, "pxe", persistent=False)
        await self.devices.power_cycle(task)
        deadline = time.time() + self.config.agent_timeout
        power.deadline, power.booted = deadline, time.time()
        await self.record.set_state(task.sn, power)
        await self.record.progress(task.sn, 20, f"{short}: power cycled once more")
        return deadline

    async def _cleanup(self, task: Task) -> None:
        await self.record.progress(task.sn, 95, "cleaning up")
        await self._undo(task, strict=True)

        def fn(t: Task) -> None:
            t.transition(Event.COMPLETE, self.instance_id, "all operations done; cleaned up")
            t.progress.percent = 100
            t.progress.message = "completed"
            t.progress.updated_at = now_iso()
            st = t.step("cleanup")
            if st is not None:
                st.status, st.finished_at = "done", now_iso()

        await self.record.update(task.sn, fn)
        await self.record.mark_server(task.sn, "installed")
        self.audit.record(self.instance_id, "task.complete", task.sn, sn=task.sn)
        log.info("task completed", action="complete", sn=task.sn, mac=task.mac)

    # ----- undo / failure -------------------------------------------------------------------

    async def _undo(self, task: Task, strict: bool) -> list[str]:
        """Put back what ``workflow_state`` says was changed. Strict: raise on the first error;
        otherwise try everything and return the errors (rollback after a failure)."""
        st = task.workflow_state
        errors: list[str] = []

        async def attempt(what: str, coro: Awaitable[object]) -> None:
            try:
                await coro
            except ProvisionError as e:
                if strict:
                    raise
                errors.append(f"{what}: {e}")

        if st.power is not None and st.power.any() and self.devices.bmc is not None:
            await attempt("boot device disk", self.devices.boot_device(task, "disk", True))
        if st.dhcp is not None and st.dhcp.any() and self.devices.dhcp is not None:
            await attempt("dhcp binding", self.devices.dhcp_unbind(task.mac, task.sn))
        if st.pxe is not None and st.pxe.any() and self.devices.pxe is not None:
            await attempt("pxe config", self.devices.pxe_remove(task.mac))
        sw = st.switch or SwitchPart()
        if sw.changed and self.devices.switch is not None:
            if sw.previous:
                await attempt("switch port", self.devices.set_port(
                    sw.switch, sw.port, sw.previous, task.sn))  # fmt: skip
            else:
                await attempt("switch port", self.devices.production_port(
                    sw.switch, sw.port, task.sn))  # fmt: skip
        return errors

    async def _fail(self, sn: str, step: str, cause: str) -> None:
        task = self.record.current(sn)
        errors = await self._undo(task, strict=False)
        error = f"step {step}: {cause}"
        if errors:
            error += "; rollback incomplete: " + "; ".join(errors)

        def fn(t: Task) -> None:
            t.transition(Event.FAIL, self.instance_id, error[:500])
            t.error = error[:2000]
            t.progress.message = f"failed at {step}"
            # Kept after a failed cleanup (the install is done): a retry runs cleanup again and
            # needs to know what to put back.
            if not errors and step != "cleanup":
                t.workflow_state = WorkflowState()

        with contextlib.suppress(Aborted, InvalidTransition):
            await self.record.update(sn, fn)
        self.audit.record(self.instance_id, "task.fail", sn, result=error[:300], sn=sn)
        log.error("task failed", action="fail", sn=sn, step=step, error=error)

    async def _rollback_failed(self, task: Task) -> None:
        """The task was failed outside the engine (an operation failed): undo our changes."""
        errors = await self._undo(task, strict=False)

        def fn(t: Task) -> None:
            if errors:
                t.error = f"{t.error or ''}; rollback incomplete: {'; '.join(errors)}"[:2000]
            elif not t.failed_in_cleanup_after_install():  # kept: a retry redoes cleanup only
                t.workflow_state = WorkflowState()

        with contextlib.suppress(Aborted):
            await self.record.update(task.sn, fn)
        result = "ok" if not errors else "; ".join(errors)[:300]
        self.audit.record(self.instance_id, "task.rollback", task.sn, result=result, sn=task.sn)

    async def _cleanup_deleted(self, previous: Task, run: asyncio.Task[None] | None) -> None:
        if run is not None:
            with contextlib.suppress(BaseException):
                await run
        if previous.owner not in (None, self.instance_id):
            return
        errors = await self._undo(previous, strict=False)
        self.audit.record(
            self.instance_id, "task.deleted_cleanup", previous.sn,
            result="ok" if not errors else "; ".join(errors)[:300], sn=previous.sn,
        )  # fmt: skip
        log.info("deleted task cleaned up", action="delete_cleanup", sn=previous.sn,
                 errors=errors)  # fmt: skip

    # ----- takeover -------------------------------------------------------------------------

    async def _takeover_loop(self, interval: float = 5.0) -> None:
        """Adopt installing tasks whose owner instance has no live heartbeat."""
        while not self._stopping:
            await asyncio.sleep(interval)
            try:
                kvs, _ = await self.store.get_prefix(self.keys.regional_prefix + "instances/")
                alive = {kv.key.rsplit("/", 1)[1] for kv in kvs}
                alive.add(self.instance_id)
                for entry in list(self.cache.tasks.values()):
                    t = entry.task
                    if t.status == Status.INSTALLING and t.owner and t.owner not in alive:
                        await self._adopt(t.sn, t.owner)
            except ProvisionError as e:
                log.warning("takeover scan failed", action="takeover_error", error=str(e))

    async def _adopt(self, sn: str, dead: str) -> None:
        def fn(t: Task) -> None:
            if t.status != Status.INSTALLING or t.owner != dead:
                raise Aborted
            t.owner = self.instance_id
            t.transition(Event.ADOPT, self.instance_id, f"taken over from {dead}")

        try:
            await self.record.update(sn, fn)
        except Aborted:
            return
        log.warning("took over task of a dead instance", action="takeover", sn=sn, owner=dead)
        if not self._busy(sn):
            self._spawn(sn)
