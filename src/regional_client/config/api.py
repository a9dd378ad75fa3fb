"""``api:`` section: listen address, public URL handed to agents, admin tokens (hashed)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from regional_client.config.base import Section

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


class ApiConfig(Section):
    listen_addr: str = "0.0.0.0"
    public_url: str | None = None
    """URL agents use (``regional_url`` kernel parameter). Default: http://<tftp_server>:<api_port>."""
    admin_tokens: list[AdminToken] = Field(default_factory=list)
