"""Task status state machine.

Rule 1: everything that decides whether a task status may change lives here, in one table.
Side effects (switch, DHCP, BMC, ...) never happen inside this module; the workflow runs them
after a transition was accepted. The diagram in ``docs/architecture.md`` is generated from
:data:`TRANSITIONS` (``python -m regional_client.model.states``).
"""

from __future__ import annotations

from enum import StrEnum

from regional_client.core.errors import InvalidTransition


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    INSTALLING = "installing"
    COMPLETED = "completed"
    FAILED = "failed"


class Event(StrEnum):
    APPROVE = "approve"  # operator/control plane approves a pending task
    CLAIM = "claim"  # a regional client starts working on it
    COMPLETE = "complete"  # every step done, cleanup finished
    FAIL = "fail"  # a step gave up (or the task is invalid)
    RETRY = "retry"  # operator retries a failed task
    REINSTALL = "reinstall"  # operator installs a completed server again
    UNAPPROVE = "unapprove"  # operator withdraws an approval before it is claimed
    ADOPT = "adopt"  # another instance takes over a task whose owner died (status unchanged)


TRANSITIONS: dict[tuple[Status, Event], Status] = {
    (Status.PENDING, Event.APPROVE): Status.APPROVED,
    (Status.APPROVED, Event.UNAPPROVE): Status.PENDING,
    (Status.APPROVED, Event.CLAIM): Status.INSTALLING,
    (Status.APPROVED, Event.FAIL): Status.FAILED,
    (Status.INSTALLING, Event.ADOPT): Status.INSTALLING,
    (Status.INSTALLING, Event.COMPLETE): Status.COMPLETED,
    (Status.INSTALLING, Event.FAIL): Status.FAILED,
    (Status.FAILED, Event.RETRY): Status.APPROVED,
    (Status.COMPLETED, Event.REINSTALL): Status.APPROVED,
}

ACTIVE = frozenset({Status.APPROVED, Status.INSTALLING})
"""Statuses in which the server is "in the install queue" (agent API isInInstallQueue)."""
FINAL = frozenset({Status.COMPLETED, Status.FAILED})


def next_status(current: str, event: Event) -> Status:
    """The status ``event`` leads to from ``current``; :class:`InvalidTransition` otherwise."""
    try:
        cur = Status(current)
    except ValueError:
        raise InvalidTransition(f"unknown task status {current!r}", status=current) from None
    to = TRANSITIONS.get((cur, event))
    if to is None:
        allowed = sorted(e.value for (s, e) in TRANSITIONS if s == cur)
        raise InvalidTransition(
            f"cannot {event.value} a task that is {cur.value} (allowed: {', '.join(allowed)})",
            status=cur.value,
            event=event.value,
        )
    return to


def mermaid() -> str:
    lines = ["stateDiagram-v2", "    [*] --> pending"]
    for (src, ev), dst in TRANSITIONS.items():
        lines.append(f"    {src.value} --> {dst.value}: {ev.value}")
    lines.append("    completed --> [*]")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(mermaid())
