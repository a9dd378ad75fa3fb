"""``workflow:`` section: step timeouts, retries and concurrency (owned by the workflow)."""

from __future__ import annotations

from pydantic import Field

from regional_client.config.base import Duration, Section


class WorkflowConfig(Section):
    enabled: bool = True
    max_concurrent_installs: int = Field(200, ge=1)
    agent_timeout: Duration = 1800.0
    """How long to wait for the agent to report and finish (Ironic: 30 min)."""
    boot_stall_timeout: Duration = 600.0
    """A server that began to network-boot (DHCP, TFTP or HTTP boot seen by this instance) and
    then stayed quiet this long without its agent reporting has failed to boot (firmware that
    gave up, a lost transfer): it gets the one extra power cycle now instead of after
    ``agent_timeout``. 0: off. Keep it above the time from the last boot-file fetch to the
    agent's first report (kernel and ramdisk start)."""
    power_timeout: Duration = 60.0
    step_timeout: Duration = 300.0
    step_retries: int = Field(3, ge=0)
    retry_backoff: Duration = 2.0
    heartbeat_ttl: Duration = Field(30.0, ge=5.0, le=600.0)
    """Seconds this instance's heartbeat outlives its last refresh (refreshed every third of
    it). Another instance adopts its installing tasks only after that: long enough that a
    loaded instance is not taken for dead, short enough that a dead one's tasks resume soon."""
