"""Step ``switch``: the server's port to the install VLAN(s); undo restores its previous config."""

from __future__ import annotations

from typing import Any

from regional_client.model import SwitchPart, Task
from regional_client.workflow.steps.base import Step, StepContext


def same_vlans(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two port configs put the port in the same VLANs (descriptions aside)."""
    key = ("mode", "vlans", "native_vlan")
    return all((a.get(k) or None) == (b.get(k) or None) for k in key)


class SwitchStep(Step):
    name = "switch"
    undoes = "switch port"

    async def run(self, ctx: StepContext, task: Task) -> None:
        devices, rec = ctx.devices, ctx.record
        if devices.switch is None:
            return await rec.skip(task.sn, self.name, "switch automation disabled")
        st = (task.workflow_state.switch or SwitchPart()).model_copy()
        if not st.port:
            st.switch, st.port = await devices.locate_port(task)
            await rec.set_state(task.sn, st)
        cfg = devices.install_port_config(task, st.switch)
        await rec.progress(task.sn, 5, f"switch {st.switch} port {st.port} → {cfg}")
        # Written before the change: a crash mid-change must still restore the port. The
        # previous config is read inside the change's own session (no extra session) and
        # recorded right after; if a crash loses it, cleanup falls back to the production VLAN.
        st.changed = True
        await rec.set_state(task.sn, st)
        previous = await devices.set_port(st.switch, st.port, cfg, task.sn)
        if st.previous is None and previous is not None and not same_vlans(previous, cfg):
            st.previous = previous
            await rec.set_state(task.sn, st)

    async def undo(self, ctx: StepContext, task: Task) -> None:
        sw = task.workflow_state.switch
        if sw is None or not sw.changed or ctx.devices.switch is None:
            return
        if sw.previous:
            await ctx.devices.set_port(sw.switch, sw.port, sw.previous, task.sn)
        else:
            await ctx.devices.production_port(sw.switch, sw.port, task.sn)
