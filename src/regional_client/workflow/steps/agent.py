"""Step ``agent``: wait until the agent in the boot ramdisk has done every operation.

The deadline is persisted (``workflow_state.power.deadline``), so a restart keeps it; the
step has no timeout of its own and no retries. A boot gets one extra power cycle — when the
agent stays silent until the deadline, or earlier when the server network-booted and then
went quiet (``boot_stall_timeout``) — after which the step fails. An operation the agent
reports as failed fails the task outside the engine: the step has it rolled back and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from regional_client.config.workflow import WorkflowConfig
from regional_client.core.errors import StepFailed
from regional_client.core.logs import get_logger
from regional_client.model import PowerPart, Status, Task, now_iso
from regional_client.workflow.steps.base import Step, StepContext
from regional_client.workflow.stop import Aborted, Shutdown

log = get_logger("workflow")


class AgentStep(Step):
    name = "agent"

    def timeout(self, cfg: WorkflowConfig) -> float | None:
        return None  # the step keeps its own deadline (persisted)

    def retries(self, cfg: WorkflowConfig) -> int:
        return 0

    async def run(self, ctx: StepContext, task: Task) -> None:
        """Wait until the agent has completed every operation (getNextOperation → reboot)."""
        sn = task.sn
        power = (task.workflow_state.power or PowerPart()).model_copy()
        deadline = float(power.deadline or time.time() + ctx.config.agent_timeout)
        if not power.deadline:
            power.deadline = deadline
            await ctx.record.set_state(sn, power)
        ch = ctx.wakeups.setdefault(sn, asyncio.Event())
        try:
            while True:
                task = ctx.record.current(sn)
                if await self._done(ctx, task):
                    return
                if ctx.stopping():
                    raise Shutdown
                left = deadline - time.time()
                if left <= 0:
                    deadline = await self._agent_timeout(ctx, task, power)
                    continue
                quiet = self._boot_quiet_for(ctx, task, power)
                if quiet is not None:
                    deadline = await self._boot_stalled(ctx, task, power, quiet)
                    continue
                ch.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ch.wait(), min(left, 5.0))
        finally:
            ctx.wakeups.pop(sn, None)

    @staticmethod
    async def _done(ctx: StepContext, task: Task) -> bool:
        """Every operation done; ``Aborted`` when the task left the install (rolled back first
        if it failed here: the agent reported a failed operation)."""
        if task.status == Status.FAILED and task.owner == ctx.instance_id:
            await ctx.rollback_failed(task)
            raise Aborted
        if task.status != Status.INSTALLING:
            raise Aborted
        return task.next_operation() is None and bool(task.agent.reported_at)

    async def _agent_timeout(self, ctx: StepContext, task: Task, power: PowerPart) -> float:
        what = "report" if not task.agent.reported_at else "finish its operations"
        why = f"agent did not {what} within {ctx.config.agent_timeout:g}s"
        return await self._recycle(
            ctx, task, power, action="agent_timeout", short="agent silent", why=why
        )

    @staticmethod
    def _boot_quiet_for(ctx: StepContext, task: Task, power: PowerPart) -> float | None:
        """Seconds the server has been quiet after network-boot activity since its last power
        action, when that exceeds ``boot_stall_timeout`` and its agent never reported."""
        limit = ctx.config.boot_stall_timeout
        if not limit or ctx.boot_activity is None or task.agent.reported_at:
            return None
        last = ctx.boot_activity.last(task.mac)
        booted = float(power.booted or 0)
        if last is None or not booted or last < booted:
            return None  # no activity seen since this boot began: only agent_timeout applies
        quiet = time.time() - last
        return quiet if quiet >= limit else None

    async def _boot_stalled(
        self, ctx: StepContext, task: Task, power: PowerPart, quiet: float
    ) -> float:
        why = (
            f"the server network-booted, then stayed quiet for {quiet:.0f}s "
            f"(boot_stall_timeout {ctx.config.boot_stall_timeout:g}s) and its agent never "
            f"reported"
        )
        return await self._recycle(
            ctx, task, power, action="boot_stalled", short="boot stalled", why=why
        )

    @staticmethod
    async def _recycle(
        ctx: StepContext, task: Task, power: PowerPart, *, action: str, short: str, why: str
    ) -> float:
        """The one extra power cycle a boot gets; after it (or without a BMC) the step fails.
        Returns the new deadline."""
        if power.recycled or ctx.devices.bmc is None:
            raise StepFailed(
                f"{why} (after {'a second power cycle' if power.recycled else 'power on'})"
            )
        log.warning(f"{short}: power cycling once more", action=action, sn=task.sn, reason=why)
        power.recycled, power.recycle_reason = now_iso(), action
        await ctx.record.set_state(task.sn, power)
        await ctx.devices.boot_device(task, "pxe", persistent=False)
        await ctx.record.open_agent_session(task.sn)  # the old boot's token dies here
        booted = time.time()  # before the cycle: the new boot's activity can follow it at once
        await ctx.devices.power_cycle(task)
        deadline = time.time() + ctx.config.agent_timeout
        power.deadline, power.booted = deadline, booted
        await ctx.record.set_state(task.sn, power)
        await ctx.record.progress(task.sn, 20, f"{short}: power cycled once more")
        return deadline
