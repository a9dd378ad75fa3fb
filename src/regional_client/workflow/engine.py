"""The install workflow (SPEC §4, the seed's "flow 1"): scheduling, claims, the step loop,
failure and rollback, takeover.

An ``approved`` task of this IDC is claimed with a compare-and-swap to ``installing`` (owner =
this instance); then the steps of :data:`~regional_client.workflow.steps.STEPS` run in order
(switch → pxe → dhcp → power → agent → cleanup), each recorded in ``task.steps`` before and
after it runs and retried with backoff within its timeout. What a step does, what it records
first in ``task.workflow_state`` so that it can be undone, and how it undoes it, is in its
module under ``steps/``; the compare-and-swap writes are in ``record.py``.

A restart resumes each task it owns at its first unfinished step (steps are idempotent; the
power reset is never sent twice: ``steps/power.py``). A step that gives up fails the task with
``error = "step <name>: <cause>"`` after undoing what earlier steps changed; deleting a task
undoes the same. Installing tasks whose owner has no live heartbeat are taken over (CAS on
``owner``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from typing import Any

from regional_client.config.workflow import WorkflowConfig
from regional_client.core.audit import Audit
from regional_client.core.errors import InvalidTransition, ProvisionError, StepFailed
from regional_client.core.logs import get_logger
from regional_client.core.metrics import Metrics
from regional_client.model import Event, Status, Task, WorkflowState
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from regional_client.tasks.boot_activity import BootActivity
from regional_client.tasks.cache import Cache, CacheEvent
from regional_client.workflow import steps
from regional_client.workflow.devices import Devices
from regional_client.workflow.record import Recorder
from regional_client.workflow.stop import Aborted, Shutdown

log = get_logger("workflow")


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
        boot_activity: BootActivity | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.keys = keys
        self.cache = cache
        self.audit = audit
        self.instance_id = instance_id
        self.record = Recorder(store, keys, cache, audit, instance_id)
        self.ctx = steps.StepContext(
            config=config,
            devices=devices,
            record=self.record,
            audit=audit,
            instance_id=instance_id,
            steps=steps.STEPS,
            rollback_failed=self._rollback_failed,
            stopping=lambda: self._stopping,
            boot_activity=boot_activity,
        )
        self._slots = asyncio.Semaphore(config.max_concurrent_installs)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._cleanups: set[asyncio.Task[None]] = set()
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
        for ev in self.ctx.wakeups.values():
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
        ch = self.ctx.wakeups.get(ev.sn)
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
        try:
            task = await self.record.update(sn, self._claimed)
        except Aborted:
            return None
        self.audit.record(self.instance_id, "task.claim", sn, sn=sn)
        log.info("task claimed", action="claim", sn=sn, mac=task.mac)
        return task

    def _claimed(self, t: Task) -> None:
        if t.status != Status.APPROVED:
            raise Aborted
        t.claim(self.instance_id, steps.STEP_NAMES)

    async def _steps(self, task: Task) -> None:
        sn = task.sn
        for step in steps.STEPS:
            seen = self.record.current(sn).step(step.name)
            if seen is not None and seen.status in ("done", "skipped"):
                continue
            try:
                await self._run_step(sn, step)
            except StepFailed as e:
                await self._fail(sn, step.name, e.message)
                return

    async def _run_step(self, sn: str, step: steps.Step) -> None:
        name, retries, timeout = step.name, step.retries(self.config), step.timeout(self.config)
        started = time.monotonic()
        attempt = 0
        while True:
            if self._stopping:
                raise Shutdown
            attempt += 1
            await self.record.mark(sn, name, "running")
            try:
                await self._attempt(sn, step, timeout)
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
            await self._finished(sn, name)
            return

    async def _attempt(self, sn: str, step: steps.Step, timeout: float | None) -> None:
        run = step.run(self.ctx, self.record.current(sn))
        if timeout:
            await asyncio.wait_for(run, timeout)
        else:
            await run

    async def _finished(self, sn: str, name: str) -> None:
        step = self.record.current(sn).step(name)
        if step is None:
            raise Aborted  # reset under us (failed, then retried): this run is stale
        if step.status == "running":  # a skipped step, and cleanup, mark themselves
            await self.record.mark(sn, name, "done")

    # ----- undo / failure -------------------------------------------------------------------

    async def _fail(self, sn: str, step: str, cause: str) -> None:
        task = self.record.current(sn)
        errors = await self.ctx.undo(task, strict=False)
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
        errors = await self.ctx.undo(task, strict=False)

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
        errors = await self.ctx.undo(previous, strict=False)
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
