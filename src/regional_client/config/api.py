"""``api:`` section: listeners (install side and admin side), public URL handed to agents,
admin tokens (hashed), and the limits on what the install network may send.

Two listeners (SPEC §10: the admin API listens apart from the install side): the install side
(``listen_addr``:``api_port``, agent API + HTTP boot + health/metrics) and the admin side
(``admin.listen_addr``:``admin.port``, default loopback; admin API, OpenAPI document, health and
metrics; optional TLS). ``admin.port: null`` puts the admin routes back on the install listener
(one port, as before; not recommended: admin tokens then cross the install network).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from regional_client.config.base import Duration, Section

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class AdminToken(Section):
    name: str
    """Who holds the token; written to every audit record made with it."""
    sha256: str
    """Hex SHA-256 of the token (``regional-client token hash`` prints it)."""

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: str) -> str:
        v = v.lower()
        if not _SHA256.match(v):
            raise ValueError("must be 64 hex characters (SHA-256 of the token)")
        return v


class AdminListener(Section):
    listen_addr: str = "127.0.0.1"
    """Address of the admin listener: loopback or a management-network address."""
    port: int | None = Field(8082, ge=0, le=65535)
    """Admin listener port (0: any free port); null: admin routes on the install listener."""
    tls_cert: Path | None = None
    """PEM certificate (chain) for HTTPS on the admin listener; with ``tls_key``."""
    tls_key: Path | None = None

    @model_validator(mode="after")
    def _pair(self) -> AdminListener:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self


class HttpLimits(Section):
    """Bounds on every HTTP connection (both listeners)."""

    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    """Largest request body; more is refused with 413 before it is read."""
    max_header_bytes: int = Field(16384, ge=1024)
    """Largest request line + headers; more closes the connection (431)."""
    header_timeout: Duration = 10.0
    """Seconds a connection may take to send a complete request head (slowloris)."""
    body_timeout: Duration = 30.0
    """Seconds a request may take to send its body."""
    keep_alive: Duration = 75.0
    """Idle seconds before a kept-alive connection is closed (agents poll every few seconds)."""
    max_connections: int = Field(2048, ge=1)
    """Open connections per listener; more are closed at once (keep ``LimitNOFILE`` above the
    sum of both listeners, TFTP transfers and etcd)."""
    max_connections_per_source: int = Field(64, ge=1)
    """Open connections from one address."""


class AgentLimits(Section):
    """Bounds on the agent API, which the install network reaches without credentials."""

    max_hardware_bytes: int = Field(65536, ge=1024)
    """Largest ``hardware`` inventory in a report (compact JSON); more is refused with 413."""
    report_rate: float = Field(1.0, ge=0)
    """Reports per second per source address (0: no limit); more get 429."""
    report_burst: int = Field(10, ge=1)
    refusal_rate: float = Field(2.0, ge=0)
    """Refused agent calls (bad token, wrong address) per second per source before the source
    is answered 429 without further work."""
    refusal_burst: int = Field(20, ge=1)
    max_discovered: int = Field(2000, ge=0)
    """Discovered-server records kept in etcd; a new unknown serial past it gets 507."""
    discovered_bytes_per_second: int = Field(32768, ge=0)
    """etcd write budget, in bytes, for all discovered-server reports together (0: no limit)."""
    discovered_burst_bytes: int = Field(1024 * 1024, ge=65536)
    discovered_refresh: Duration = 60.0
    """A known discovered server's record is rewritten at most this often."""
    check_mac: bool = True
    """Compare the MAC of a caller on a directly attached segment (neighbour table) with the
    MAC its token was issued to."""


class ApiConfig(Section):
    listen_addr: str = "0.0.0.0"
    """Address of the install-side listener (agent API and HTTP boot), on ``api_port``."""
    public_url: str | None = None
    """URL agents use (``regional_url`` kernel parameter). Default: http://<tftp_server>:<api_port>."""
    admin_tokens: list[AdminToken] = Field(default_factory=list)
    admin: AdminListener = Field(default_factory=AdminListener)
    limits: HttpLimits = Field(default_factory=HttpLimits)
    agent: AgentLimits = Field(default_factory=AgentLimits)
