"""Task and server records (SPEC §3) and the task status state machine."""

from regional_client.model.states import ACTIVE, FINAL, TRANSITIONS, Event, Status, next_status
from regional_client.model.task import (
    BmcSpec,
    HardwareScript,
    NetworkSpec,
    OperationResult,
    Progress,
    PxeSpec,
    Server,
    Step,
    StepStatus,
    SwitchSpec,
    Task,
    now_iso,
)

__all__ = [
    "ACTIVE",
    "FINAL",
    "TRANSITIONS",
    "BmcSpec",
    "Event",
    "HardwareScript",
    "NetworkSpec",
    "OperationResult",
    "Progress",
    "PxeSpec",
    "Server",
    "Status",
    "Step",
    "StepStatus",
    "SwitchSpec",
    "Task",
    "next_status",
    "now_iso",
]
