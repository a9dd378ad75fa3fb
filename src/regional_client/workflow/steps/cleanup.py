"""Step ``cleanup``: undo every earlier step (strictly), then complete the task.

It only puts things back, so it gets more patience than a step that changes them (two more
retries). A failure here after the install keeps ``workflow_state``: a retry of the task runs
this step only (``Task.failed_in_cleanup_after_install``).
"""

from __future__ import annotations

from regional_client.config.workflow import WorkflowConfig
from regional_client.core.logs import get_logger
from regional_client.model import Event, Task, now_iso
from regional_client.workflow.steps.base import Step, StepContext

log = get_logger("workflow")


class CleanupStep(Step):
    name = "cleanup"

    def retries(self, cfg: WorkflowConfig) -> int:
        return cfg.step_retries + 2

    async def run(self, ctx: StepContext, task: Task) -> None:
        await ctx.record.progress(task.sn, 95, "cleaning up")
        await ctx.undo(task, strict=True)

        def fn(t: Task) -> None:
            t.transition(Event.COMPLETE, ctx.instance_id, "all operations done; cleaned up")
            t.progress.percent = 100
            t.progress.message = "completed"
            t.progress.updated_at = now_iso()
            st = t.step(self.name)
            if st is not None:
                st.status, st.finished_at = "done", now_iso()

        await ctx.record.update(task.sn, fn)
        await ctx.record.mark_server(task.sn, "installed")
        ctx.audit.record(ctx.instance_id, "task.complete", task.sn, sn=task.sn)
        log.info("task completed", action="complete", sn=task.sn, mac=task.mac)
