"""The typed ``workflow_state``: records written by earlier versions load and store unchanged."""

from __future__ import annotations

from typing import Any

from regional_client.model import Event, PowerPart, Status, Task

OLD = {
    "switch": {
        "switch": "tor1", "port": "Gi0/3", "changed": True,
        "previous": {"mode": "access", "vlans": [200], "native_vlan": None, "description": "prod"},
    },
    "pxe": {"written": True},
    "dhcp": {"bound": "10.0.0.5"},
    "power": {
        "intent": "2026-01-01T00:00:00.000Z", "done": True, "at": "2026-01-01T00:00:01.000Z",
        "action": "power_reset", "deadline": 1767225601.5, "booted": 1767223801.5,
        "recycled": "2026-01-01T00:30:00.000Z", "recycle_reason": "agent_timeout",
    },
}  # fmt: skip


def _task(ws: Any = None) -> Task:
    rec: dict[str, Any] = {"sn": "S1", "mac": "52:54:00:00:00:01"}
    if ws is not None:
        rec["workflow_state"] = ws
    return Task.model_validate(rec)


def test_old_record_round_trips_unchanged() -> None:
    t = _task(OLD)
    assert t.to_json()["workflow_state"] == OLD
    assert t.workflow_state.switch is not None and t.workflow_state.switch.port == "Gi0/3"
    assert t.workflow_state.power is not None and t.workflow_state.power.deadline == 1767225601.5


def test_unknown_parts_and_keys_are_kept() -> None:
    ws = {"power": {"done": True, "from_newer": 1}, "verify": {"booted_disk": True}}
    assert _task(ws).to_json()["workflow_state"] == ws


def test_any_means_something_recorded() -> None:
    assert not _task().workflow_state.any()
    assert _task().to_json()["workflow_state"] == {}
    assert _task({"switch": {}}).workflow_state.any()  # as bool({"switch": {}}) was
    assert _task({"verify": {"x": 1}}).workflow_state.any()
    t = _task()
    t.workflow_state.put(PowerPart(intent="now"))
    assert t.to_json()["workflow_state"] == {"power": {"intent": "now"}}


def test_adoption_is_a_transition_with_the_history_entry_of_before() -> None:
    t = _task()
    t.status = Status.INSTALLING
    t.transition(Event.ADOPT, "rc-b", "taken over from rc-a")
    h = t.history[-1]
    assert list(h) == ["at", "from", "to", "by", "reason"]
    assert (h["from"], h["to"], h["by"], h["reason"]) == (
        "installing", "installing", "rc-b", "taken over from rc-a",
    )  # fmt: skip
    assert t.status == "installing"
