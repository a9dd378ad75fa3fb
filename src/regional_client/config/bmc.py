"""``bmc:`` section (owned by the BMC component).

A ten-line config needs none of it: defaults suit ipmitool against ordinary BMCs. Per-server
credentials come from the task (``bmc: {ip, username, password, type, port}``); the
``default_*`` keys fill what a task leaves out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from regional_client.config.base import Duration, Section


class IpmiOptions(Section):
    """How ``ipmitool`` is run."""

    ipmitool: str = "ipmitool"
    """Path or name of the ipmitool binary."""
    interface: Literal["lanplus", "lan"] = "lanplus"
    """``-I``: lanplus is IPMI 2.0 (RMCP+); plain lan only for very old BMCs."""
    cipher_suite: int | None = Field(default=3, ge=0, le=17)
    """``-C``: 3 (AES-128, HMAC-SHA1) is what nearly every BMC supports. None lets ipmitool
    negotiate, which costs ~10 s a call against some BMCs."""
    retransmit_timeout: int = Field(default=1, ge=1, le=60)
    """``-N``: seconds between lanplus retransmissions."""
    retransmits: int = Field(default=2, ge=0, le=10)
    """``-R``: retransmissions of one request before ipmitool gives up."""
    privilege: Literal["ADMINISTRATOR", "OPERATOR", "USER"] = "ADMINISTRATOR"
    """``-L``: session privilege level."""


class RedfishOptions(Section):
    """How the Redfish client connects."""

    scheme: Literal["https", "http"] = "https"
    verify_tls: bool = True
    """Check the BMC's TLS certificate (many BMCs ship self-signed ones: set ``ca_bundle``)."""
    ca_bundle: Path | None = None
    """CA file to check BMC certificates against (implies ``verify_tls``)."""
    system_id: str | None = None
    """Which ``ComputerSystem`` to drive when the service root lists several (default: the
    only one; it is an error if there are several and none is named)."""
    use_sessions: bool = True
    """Log in through the SessionService when the BMC offers one (one login per BMC, token
    reused); otherwise, or when off, HTTP basic auth on a kept-alive connection."""
    accept_continuous_for_once: bool = True
    """A "Once" boot override read back as "Continuous" with the right target counts as
    honoured (some BMCs and sushy-tools store Once as Continuous). Off: it is a failure."""


class BmcConfig(Section):
    enabled: bool = True
    protocol: Literal["ipmi", "redfish"] = "ipmi"
    """BMC type used when a task does not say (``bmc.type``)."""
    default_username: str = "admin"
    default_password: str | None = None
    """May be ``enc:...`` (see ``regional-client secret encrypt``)."""
    default_port: int | None = Field(default=None, ge=1, le=65535)
    """Port when a task gives none (None: 623 for IPMI, 443/80 for Redfish)."""
    timeout: Duration = 30.0
    """Upper bound of one BMC call (one ipmitool run, one HTTP request)."""
    retries: int = Field(default=3, ge=0)
    """Extra attempts of a call that timed out or failed on the network (not auth failures)."""
    retry_backoff: Duration = 1.0
    """Pause before the first retry; doubles each time."""
    max_concurrent: int = Field(default=20, ge=1)
    """BMC operations running at once across all servers."""
    power_timeout: Duration = 120.0
    """How long a power change may take to be seen when read back (some BMCs apply it late);
    the command is re-issued once, half-way, if the BMC still reports the old state."""
    poll_interval: Duration = 1.0
    """Pause between read-backs while waiting for a power change."""
    verify_attempts: int = Field(default=3, ge=1, le=10)
    """Times a boot-device change is issued and read back before the BMC is reported as
    ignoring it."""
    ipmi: IpmiOptions = Field(default_factory=IpmiOptions)
    redfish: RedfishOptions = Field(default_factory=RedfishOptions)
