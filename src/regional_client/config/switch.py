"""``switch:`` section (owned by the switch component).

The seed's single-switch form (``type``, ``host``, ...) is kept; ``inventory`` lists several.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from regional_client.config.base import Duration, Section


class SwitchEntry(Section):
    name: str
    type: str = "cisco"
    host: str
    port: int | None = None
    username: str = "admin"
    password: str | None = None
    protocol: Literal["ssh", "snmp", "rest"] = "ssh"
    install_vlan: int = Field(100, ge=1, le=4094)
    production_vlan: int = Field(200, ge=1, le=4094)


class SwitchConfig(Section):
    enabled: bool = True
    type: str = "cisco"
    host: str | None = None
    username: str = "admin"
    password: str | None = None
    protocol: Literal["ssh", "snmp", "rest"] = "ssh"
    install_vlan: int = Field(100, ge=1, le=4094)
    production_vlan: int = Field(200, ge=1, le=4094)
    timeout: Duration = 30.0
    inventory: list[SwitchEntry] = Field(default_factory=list)
