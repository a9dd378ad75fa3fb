"""Task and server records as stored in etcd (SPEC §3), with validated status changes.

Models keep unknown fields (``extra="allow"``): the control plane may add its own, and a
compare-and-swap update by the regional client must never drop them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from ipaddress import IPv4Address
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from regional_client.core.ids import check_sn, normalize_mac
from regional_client.model.states import Event, Status, next_status


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class NetworkSpec(_Open):
    ip: IPv4Address | None = None
    netmask: IPv4Address | None = None
    gateway: IPv4Address | None = None
    dns_servers: list[IPv4Address] = Field(default_factory=list)
    vlans: list[int] = Field(default_factory=list)


class BmcSpec(_Open):
    ip: str | None = None
    username: str | None = None
    password: str | None = None
    """Clear text or ``enc:...`` (encrypted with the regional client's secrets key)."""
    type: Literal["ipmi", "redfish"] | None = None
    port: int | None = Field(None, ge=1, le=65535)


class SwitchSpec(_Open):
    name: str | None = None
    port: str | None = None
    vlans: list[int] = Field(default_factory=list)
    mode: Literal["access", "trunk"] = "access"
    native_vlan: int | None = Field(None, ge=1, le=4094)

    @field_validator("vlans")
    @classmethod
    def _vlans(cls, v: list[int]) -> list[int]:
        for x in v:
            if not 1 <= x <= 4094:
                raise ValueError(f"VLAN {x} outside 1-4094")
        return v


class PxeSpec(_Open):
    kernel_path: str | None = None
    initrd_path: str | None = None
    kernel_params: str | None = None


class HardwareScript(_Open):
    name: str
    interpreter: str = "/bin/sh"
    content: str
    timeout: int = Field(600, ge=1)


StepStatus = Literal["pending", "running", "done", "failed", "skipped"]


class Step(_Open):
    name: str
    status: StepStatus = "pending"
    attempts: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None


class Progress(_Open):
    operation: str | None = None
    percent: float = Field(0, ge=0, le=100)
    message: str = ""
    updated_at: str | None = None


class HistoryEntry(_Open):
    at: str
    from_: str | None = Field(None, alias="from")
    to: str
    by: str
    reason: str = ""

    def dump(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=False)


class OperationResult(_Open):
    status: Literal["done", "failed"]
    attempts: int = 1
    message: str = ""
    exit_code: int | None = None
    finished_at: str | None = None


class AgentState(_Open):
    reported_at: str | None = None
    """When the agent in the boot ramdisk first reported for this install attempt."""
    ip: str | None = None
    last_seen: str | None = None


class AgentSession(_Open):
    """One boot's agent credential (SPEC §5). A power action that network-boots the server
    opens a session (``boot`` counts them); the agent's first ``report`` from the task's MAC
    and install IP claims it and receives the token, of which only the hash is kept here. The
    next power action replaces the session, cleanup and a new attempt remove it."""

    boot: int = 0
    """Network boots of this install attempt (1 after the power step)."""
    opened_at: str | None = None
    token_sha256: str | None = None
    """SHA-256 of the token handed out for this boot; None: not claimed yet."""
    mac: str | None = None
    """MAC and IP the claiming report came from: every later call must come from them."""
    ip: str | None = None
    claimed_at: str | None = None
    refused: int = 0
    """Claims refused for this boot (a second claimant, a wrong MAC or address)."""

    @property
    def claimed(self) -> bool:
        return bool(self.token_sha256)


class _Record(_Open):
    def any(self) -> bool:
        """Something is recorded (absent and null mean the same here)."""
        values = (*self.__dict__.values(), *(self.model_extra or {}).values())
        return any(v is not None for v in values)


class StatePart(_Record):
    """One part of :class:`WorkflowState`, written whole by the step it belongs to."""

    KEY: ClassVar[str]
    """Its key in ``workflow_state``."""


class SwitchPart(StatePart):
    """The server's port, changed to the install config (``changed`` is written before)."""

    KEY: ClassVar[str] = "switch"
    switch: str | None = None
    port: str | None = None
    changed: bool | None = None
    previous: dict[str, Any] | None = None
    """The port's config before the change (what cleanup restores); absent: production VLAN."""


class PxePart(StatePart):
    KEY: ClassVar[str] = "pxe"
    written: bool | None = None


class DhcpPart(StatePart):
    KEY: ClassVar[str] = "dhcp"
    bound: str | None = None
    """The install IP bound to the server's MAC."""


class PowerPart(StatePart):
    """The power step's intent and outcome; the agent step's deadline and extra power cycle."""

    KEY: ClassVar[str] = "power"
    intent: str | None = None
    """When the reset was about to be sent (written before it: never reset twice)."""
    done: bool | None = None
    assumed: bool | None = None
    """Interrupted between intent and confirmation: taken as done, not repeated."""
    at: str | None = None
    action: str | None = None
    """``power_on`` or ``power_reset``."""
    deadline: float | None = None
    """Epoch seconds by which the agent must have finished."""
    booted: float | None = None
    """Epoch seconds of the last power action (boot-stall detection counts from it)."""
    recycled: str | None = None
    """When the one extra power cycle was sent."""
    recycle_reason: str | None = None
    """``agent_timeout`` or ``boot_stalled``."""


class WorkflowState(_Record):
    """What the workflow changed and must undo: one part per step that changes a device.

    Stored under the keys of the dict it replaced (``switch``, ``pxe``, ``dhcp``, ``power``),
    so records written before load unchanged; absent parts stay absent (``exclude_none``);
    unknown parts and keys (another version's) are kept.
    """

    switch: SwitchPart | None = None
    pxe: PxePart | None = None
    dhcp: DhcpPart | None = None
    power: PowerPart | None = None

    def put(self, part: StatePart) -> None:
        setattr(self, part.KEY, part)


class Task(_Open):
    task_id: str = ""
    sn: str
    mac: str
    status: Status = Status.PENDING
    hostname: str | None = None
    os_type: str | None = None
    os_version: str | None = None
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    bmc: BmcSpec = Field(default_factory=BmcSpec)
    switch: SwitchSpec = Field(default_factory=SwitchSpec)
    pxe: PxeSpec = Field(default_factory=PxeSpec)
    operations: list[str] = Field(default_factory=lambda: ["hardware_config", "os_install"])
    operation_retries: int = Field(0, ge=0, le=10)
    """How often a failed operation may be retried by the agent before the task fails."""
    results: dict[str, OperationResult] = Field(default_factory=dict)
    """Per operation: outcome reported by the agent (operationComplete)."""
    operation_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Extra parameters per operation, handed to the agent by getNextOperation."""
    hardware_scripts: list[HardwareScript] = Field(default_factory=list)
    agent: AgentState = Field(default_factory=AgentState)
    agent_session: AgentSession | None = None
    """The current boot's agent credential (hash only); None: no agent may claim a token."""
    steps: list[Step] = Field(default_factory=list)
    progress: Progress = Field(default_factory=Progress)
    history: list[dict[str, Any]] = Field(default_factory=list)
    owner: str | None = None
    """Instance id of the regional client that claimed the task."""
    claimed_at: str | None = None
    workflow_state: WorkflowState = Field(default_factory=WorkflowState)
    """What the workflow changed and must undo: switch port and its previous config, power
    actions taken, ... (written before each device change, so a crash can resume or undo)."""
    created_at: str | None = None
    updated_at: str | None = None
    error: str | None = None

    @field_validator("sn")
    @classmethod
    def _sn(cls, v: str) -> str:
        return check_sn(v)

    @field_validator("mac")
    @classmethod
    def _mac(cls, v: str) -> str:
        return normalize_mac(v)

    @field_validator("operations")
    @classmethod
    def _ops(cls, v: list[str]) -> list[str]:
        for op in v:
            if not op or op in ("none", "reboot") or not op.replace("_", "").isalnum():
                raise ValueError(f"invalid operation name {op!r}")
        if len(set(v)) != len(v):
            raise ValueError("operations must be unique")
        return v

    # --- derived views --------------------------------------------------------------------

    def next_operation(self) -> str | None:
        """The first operation not yet done, or None when all are done."""
        for op in self.operations:
            r = self.results.get(op)
            if r is None or r.status != "done":
                return op
        return None

    def step(self, name: str) -> Step | None:
        for s in self.steps:
            if s.name == name:
                return s
        return None

    # --- changes (pure: return nothing, mutate self; callers CAS the result) ---------------

    def failed_in_cleanup_after_install(self) -> bool:
        """Did the last attempt get through the agent step (the OS is installed) and fail in
        cleanup, with what is still to put back in ``workflow_state``? A retry of such a task
        runs cleanup only."""
        agent, cleanup = self.step("agent"), self.step("cleanup")
        return (
            agent is not None
            and agent.status == "done"
            and cleanup is not None
            and cleanup.status == "failed"
            and self.workflow_state.any()
        )

    def claim(self, by: str, steps: Sequence[str]) -> None:
        """Approved → installing, owned by ``by``: a fresh attempt with ``steps`` pending; or,
        when the last attempt installed the OS and failed in cleanup, that cleanup only (what
        it must put back is kept)."""
        installed = self.failed_in_cleanup_after_install()
        self.transition(
            Event.CLAIM, by, "claimed by regional client" + ("; cleanup only" if installed else "")
        )
        self.owner = by
        self.claimed_at = now_iso()
        self.error = None
        if installed:
            cleanup = self.step("cleanup")
            assert cleanup is not None
            cleanup.status, cleanup.error = "pending", None
            cleanup.started_at = cleanup.finished_at = None
            self.progress.message = "claimed: cleanup only"
            return
        self.steps = [Step(name=s) for s in steps]
        self.end_agent_session()
        self.workflow_state = WorkflowState()
        self.results = {}
        self.agent.reported_at = None
        self.progress.percent = 0
        self.progress.message = "claimed"

    def open_agent_session(self) -> None:
        """A power action network-boots the server: the previous boot's token is gone, the
        next first report may claim a new one."""
        boot = self.agent_session.boot if self.agent_session is not None else 0
        self.end_agent_session()
        self.agent_session = AgentSession(boot=boot + 1, opened_at=now_iso())

    def end_agent_session(self) -> None:
        """No token is valid and none can be claimed (cleanup, a new attempt, disk boot). A
        clear ``agent_token`` left by an older version goes too."""
        self.agent_session = None
        if self.model_extra is not None:
            self.model_extra.pop("agent_token", None)

    def transition(self, event: Event, by: str, reason: str = "") -> None:
        to = next_status(self.status, event)
        at = now_iso()
        self.history.append(
            HistoryEntry(at=at, from_=self.status.value, to=to.value, by=by, reason=reason).dump()
        )
        self.status = to
        self.updated_at = at
        if to != Status.INSTALLING:
            self.end_agent_session()  # the agent API is closed outside installing

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Server(_Open):
    sn: str
    macs: list[str] = Field(default_factory=list)
    ip: str | None = None
    hardware: dict[str, Any] = Field(default_factory=dict)
    state: Literal["discovered", "installing", "installed"] = "discovered"
    task_id: str | None = None
    first_seen: str | None = None
    last_seen: str | None = None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)
