"""What a step is, and what it is given to run.

A :class:`Step` is a small stateless object: its ``name`` (recorded in ``task.steps``), its
``timeout`` and ``retries`` (read from the workflow config), ``run`` (idempotent: an
interrupted step is run again after a restart) and ``undo`` (puts back what ``run`` changed,
as recorded in ``task.workflow_state``; by default nothing). The engine owns the loop around
them: attempts, backoff, timeouts, marking the step in etcd, failing the task.

Every device change in ``run`` is preceded by a write of what must be undone
(``ctx.record.set_state``), so a crash at any point leaves enough in etcd to resume or undo.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar

from regional_client.config.workflow import WorkflowConfig
from regional_client.core.audit import Audit
from regional_client.core.errors import ProvisionError
from regional_client.model import Task
from regional_client.tasks.boot_activity import BootActivity
from regional_client.workflow.devices import Devices
from regional_client.workflow.record import Recorder


class Step(ABC):
    name: ClassVar[str]
    undoes: ClassVar[str] = ""
    """What ``undo`` puts back, as a failed rollback names it ("<undoes>: <error>")."""

    def timeout(self, cfg: WorkflowConfig) -> float | None:
        """Seconds an attempt may take; None: no limit (the step keeps its own deadline)."""
        return cfg.step_timeout

    def retries(self, cfg: WorkflowConfig) -> int:
        """Attempts after the first one before the step gives up."""
        return cfg.step_retries

    @abstractmethod
    async def run(self, ctx: StepContext, task: Task) -> None:
        """Do the step (again, after a crash: idempotent). ``ProvisionError``/``TimeoutError``:
        retried; ``StepFailed``: gives up at once."""

    async def undo(self, ctx: StepContext, task: Task) -> None:  # noqa: B027 (optional)
        """Put back what ``task.workflow_state`` says ``run`` changed; raise ``ProvisionError``."""


@dataclass
class StepContext:
    """What the steps need, handed to each ``run`` and ``undo``."""

    config: WorkflowConfig
    devices: Devices
    record: Recorder
    """The CAS writes (step marks, workflow state, progress) and the cached task."""
    audit: Audit
    instance_id: str
    steps: tuple[Step, ...]
    """All the steps, in order (undo walks them backwards)."""
    rollback_failed: Callable[[Task], Awaitable[None]]
    """The engine's undo of a task failed outside it (an agent's failed operation)."""
    stopping: Callable[[], bool]
    """The process is stopping: a waiting step raises ``Shutdown``."""
    boot_activity: BootActivity | None = None
    wakeups: dict[str, asyncio.Event] = field(default_factory=dict)
    """Per serial: set by the engine whenever the task changes (the agent step waits on it)."""

    async def undo(self, task: Task, strict: bool) -> list[str]:
        """Put back what ``workflow_state`` says was changed, last step first. Strict: raise on
        the first error; otherwise try everything and return the errors (rollback)."""
        errors: list[str] = []
        for step in reversed(self.steps):
            try:
                await step.undo(self, task)
            except ProvisionError as e:
                if strict:
                    raise
                errors.append(f"{step.undoes}: {e}")
        return errors
