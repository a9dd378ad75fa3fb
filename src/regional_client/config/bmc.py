"""``bmc:`` section (owned by the BMC component)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from regional_client.config.base import Duration, Section


class BmcConfig(Section):
    enabled: bool = True
    protocol: Literal["ipmi", "redfish"] = "ipmi"
    default_username: str = "admin"
    default_password: str | None = None
    """May be ``enc:...``."""
    timeout: Duration = 30.0
    retries: int = Field(3, ge=0)
    max_concurrent: int = Field(20, ge=1)
