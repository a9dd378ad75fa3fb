"""The install workflow's steps, one class each, run in the order of :data:`STEPS`.

switch → pxe → dhcp → power → agent → cleanup. A step's ``run`` and ``undo`` sit side by side
in its module; undo walks :data:`STEPS` backwards (boot device disk, DHCP binding, PXE config,
switch port), so a step undoes after the steps that came later. Adding a step is one class
(a module here) and one line in :data:`STEPS`; a step that changes a device also adds its part
to ``model.task.WorkflowState`` (what to undo).
"""

from regional_client.workflow.steps.agent import AgentStep
from regional_client.workflow.steps.base import Step, StepContext
from regional_client.workflow.steps.cleanup import CleanupStep
from regional_client.workflow.steps.dhcp import DhcpStep
from regional_client.workflow.steps.power import PowerStep
from regional_client.workflow.steps.pxe import PxeStep
from regional_client.workflow.steps.switch import SwitchStep

STEPS: tuple[Step, ...] = (
    SwitchStep(),
    PxeStep(),
    DhcpStep(),
    PowerStep(),
    AgentStep(),
    CleanupStep(),
)
STEP_NAMES: tuple[str, ...] = tuple(s.name for s in STEPS)

__all__ = [
    "STEPS",
    "STEP_NAMES",
    "AgentStep",
    "CleanupStep",
    "DhcpStep",
    "PowerStep",
    "PxeStep",
    "Step",
    "StepContext",
    "SwitchStep",
]
