"""The task state table: allowed and refused transitions, history, and the docs diagram."""

from __future__ import annotations

from pathlib import Path

import pytest

from regional_client.core.errors import InvalidTransition
from regional_client.model import TRANSITIONS, Event, Status, Task
from regional_client.model.states import mermaid, next_status

ROOT = Path(__file__).resolve().parents[2]


def test_happy_path_and_retry() -> None:
    t = Task(sn="S1", mac="52:54:00:00:00:01")
    for ev, to in [(Event.APPROVE, "approved"), (Event.CLAIM, "installing"),
                   (Event.FAIL, "failed"), (Event.RETRY, "approved"), (Event.CLAIM, "installing"),
                   (Event.COMPLETE, "completed"), (Event.REINSTALL, "approved")]:  # fmt: skip
        t.transition(ev, "test")
        assert t.status == to
    assert [h["to"] for h in t.history] == [
        "approved", "installing", "failed", "approved", "installing", "completed", "approved",
    ]  # fmt: skip
    assert all(h["by"] == "test" and h["at"] for h in t.history)


@pytest.mark.parametrize("status", list(Status))
def test_every_missing_pair_is_refused(status: Status) -> None:
    for ev in Event:
        if (status, ev) in TRANSITIONS:
            assert next_status(status, ev) == TRANSITIONS[(status, ev)]
        else:
            with pytest.raises(InvalidTransition, match=f"cannot {ev.value}"):
                next_status(status, ev)


def test_unknown_status() -> None:
    with pytest.raises(InvalidTransition, match="unknown task status"):
        next_status("exploded", Event.APPROVE)


def test_docs_diagram_matches_table() -> None:
    assert mermaid() in (ROOT / "docs/architecture.md").read_text()


def test_unknown_fields_survive() -> None:
    t = Task.model_validate({"sn": "S2", "mac": "52:54:00:00:00:02", "cp_owner": {"team": "x"}})
    assert t.to_json()["cp_owner"] == {"team": "x"}
