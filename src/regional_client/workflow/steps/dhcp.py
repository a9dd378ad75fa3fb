"""Step ``dhcp``: the task's install IP bound to the server's MAC; undo removes the binding.

Without an install IP in the task the server takes an address from the pool (skipped).
"""

from __future__ import annotations

from regional_client.model import DhcpPart, Task
from regional_client.workflow.steps.base import Step, StepContext


class DhcpStep(Step):
    name = "dhcp"
    undoes = "dhcp binding"

    async def run(self, ctx: StepContext, task: Task) -> None:
        if ctx.devices.dhcp is None:
            return await ctx.record.skip(task.sn, self.name, "DHCP disabled")
        if task.network.ip is None:
            return await ctx.record.skip(task.sn, self.name, "no install IP: dynamic pool")
        await ctx.record.set_state(task.sn, DhcpPart(bound=str(task.network.ip)))
        await ctx.devices.dhcp_bind(task)
        await ctx.record.progress(task.sn, 15, f"DHCP binding {task.mac} → {task.network.ip}")

    async def undo(self, ctx: StepContext, task: Task) -> None:
        dhcp = task.workflow_state.dhcp
        if dhcp is not None and dhcp.any() and ctx.devices.dhcp is not None:
            await ctx.devices.dhcp_unbind(task.mac, task.sn)
