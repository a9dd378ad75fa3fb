"""Step ``pxe``: the server's boot configs (PXE/GRUB/iPXE) written; undo removes them."""

from __future__ import annotations

from regional_client.model import PxePart, Task
from regional_client.workflow.steps.base import Step, StepContext


class PxeStep(Step):
    name = "pxe"
    undoes = "pxe config"

    async def run(self, ctx: StepContext, task: Task) -> None:
        if ctx.devices.pxe is None:
            return await ctx.record.skip(task.sn, self.name, "PXE config generation disabled")
        await ctx.record.set_state(task.sn, PxePart(written=True))
        await ctx.devices.pxe_write(task)
        await ctx.record.progress(task.sn, 10, "PXE configuration written")

    async def undo(self, ctx: StepContext, task: Task) -> None:
        pxe = task.workflow_state.pxe
        if pxe is not None and pxe.any() and ctx.devices.pxe is not None:
            await ctx.devices.pxe_remove(task.mac)
