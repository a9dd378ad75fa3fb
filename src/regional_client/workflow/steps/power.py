"""Step ``power``: a one-time PXE boot, then power on (or reset); undo boots from disk again.

The reset is never sent twice: its intent is recorded first, and a step interrupted between
intent and confirmation is taken as done (``assumed``). If the reset had not in fact happened,
the agent step's single extra power cycle covers it. Right before the reset a new agent session
opens (:meth:`Recorder.open_agent_session`): no token of an earlier boot works after it.
"""

from __future__ import annotations

import time

from regional_client.config.workflow import WorkflowConfig
from regional_client.core.logs import get_logger
from regional_client.model import PowerPart, Task, now_iso
from regional_client.workflow.steps.base import Step, StepContext

log = get_logger("workflow")


class PowerStep(Step):
    name = "power"
    undoes = "boot device disk"

    def timeout(self, cfg: WorkflowConfig) -> float | None:
        return cfg.power_timeout

    async def run(self, ctx: StepContext, task: Task) -> None:
        devices, rec = ctx.devices, ctx.record
        if devices.bmc is None:
            why = "BMC control disabled: power on by hand"
            return await rec.skip(task.sn, self.name, why)
        st = (task.workflow_state.power or PowerPart()).model_copy()
        if st.intent and not st.done:
            log.warning("power step interrupted; not repeating the reset", action="power_resume",
                        sn=task.sn)  # fmt: skip
            st.done, st.assumed, st.at = True, True, st.intent
            await rec.set_state(task.sn, st)
            return
        if st.done:
            return
        await devices.boot_device(task, "pxe", persistent=False)
        st.intent = now_iso()
        await rec.set_state(task.sn, st)
        await rec.open_agent_session(task.sn)
        booted = time.time()  # before the reset: the boot's activity can follow it at once
        st.action = await devices.power_on_or_reset(task)
        st.done, st.at = True, now_iso()
        st.deadline, st.booted = time.time() + ctx.config.agent_timeout, booted
        await rec.set_state(task.sn, st)
        await rec.progress(task.sn, 20, f"{st.action} with PXE boot: waiting for the agent")

    async def undo(self, ctx: StepContext, task: Task) -> None:
        power = task.workflow_state.power
        if power is not None and power.any() and ctx.devices.bmc is not None:
            await ctx.devices.boot_device(task, "disk", True)
