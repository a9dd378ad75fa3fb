"""The step table without devices: order, timeouts and retries, and the undo order (fakes)."""

from __future__ import annotations

from typing import Any

import pytest

from regional_client.config.workflow import WorkflowConfig
from regional_client.core.errors import SwitchError
from regional_client.model import Task
from regional_client.workflow.steps import STEP_NAMES, STEPS, StepContext

ALL = {
    "switch": {"switch": "tor1", "port": "Gi0/3", "changed": True, "previous": {"vlans": [200]}},
    "pxe": {"written": True}, "dhcp": {"bound": "10.0.0.5"}, "power": {"done": True},
}  # fmt: skip


class FakeDevices:
    """Records the undo calls; the services are "enabled" (not None)."""

    switch = pxe = dhcp = bmc = object()

    def __init__(self, fail: tuple[str, ...] = ()) -> None:
        self.calls: list[str] = []
        self.fail = fail

    async def _call(self, what: str) -> None:
        self.calls.append(what)
        if what in self.fail:
            raise SwitchError(f"{what} refused")

    async def boot_device(self, task: Task, device: str, persistent: bool) -> None:
        await self._call(f"boot {device}")

    async def dhcp_unbind(self, mac: str, sn: str) -> None:
        await self._call("dhcp_unbind")

    async def pxe_remove(self, mac: str) -> None:
        await self._call("pxe_remove")

    async def set_port(self, switch: str, port: str, cfg: dict[str, Any], sn: str) -> None:
        await self._call(f"set_port {port} {cfg['vlans']}")

    async def production_port(self, switch: str, port: str, sn: str) -> None:
        await self._call(f"production_port {port}")


def _ctx(devices: FakeDevices) -> StepContext:
    async def nothing(task: Task) -> None:
        return None

    return StepContext(
        config=WorkflowConfig(),
        devices=devices,  # type: ignore[arg-type]
        record=None,  # type: ignore[arg-type]
        audit=None,  # type: ignore[arg-type]
        instance_id="rc-a",
        steps=STEPS,
        rollback_failed=nothing,
        stopping=lambda: False,
    )


def _task(ws: dict[str, Any]) -> Task:
    return Task.model_validate({"sn": "S1", "mac": "52:54:00:00:00:01", "workflow_state": ws})


def test_order_timeouts_and_retries() -> None:
    cfg = WorkflowConfig(step_timeout=300, power_timeout=60, step_retries=3)
    assert STEP_NAMES == ("switch", "pxe", "dhcp", "power", "agent", "cleanup")
    assert {s.name: s.timeout(cfg) for s in STEPS} == {
        "switch": 300, "pxe": 300, "dhcp": 300, "power": 60, "agent": None, "cleanup": 300,
    }  # fmt: skip
    assert {s.name: s.retries(cfg) for s in STEPS} == {
        "switch": 3, "pxe": 3, "dhcp": 3, "power": 3, "agent": 0, "cleanup": 5,
    }  # fmt: skip


async def test_undo_is_reverse_step_order_and_collects_errors() -> None:
    dev = FakeDevices(fail=("dhcp_unbind", "pxe_remove"))
    errors = await _ctx(dev).undo(_task(ALL), strict=False)
    assert dev.calls == ["boot disk", "dhcp_unbind", "pxe_remove", "set_port Gi0/3 [200]"]
    assert errors == ["dhcp binding: dhcp_unbind refused", "pxe config: pxe_remove refused"]


async def test_undo_without_previous_config_and_strict() -> None:
    dev = FakeDevices()
    sw = {"switch": "tor1", "port": "Gi0/3", "changed": True}
    assert await _ctx(dev).undo(_task({"switch": sw, "power": {}}), strict=False) == []
    assert dev.calls == ["production_port Gi0/3"]  # an empty part records nothing
    dev = FakeDevices(fail=("dhcp_unbind",))
    with pytest.raises(SwitchError, match="dhcp_unbind refused"):
        await _ctx(dev).undo(_task(ALL), strict=True)
    assert dev.calls == ["boot disk", "dhcp_unbind"]
