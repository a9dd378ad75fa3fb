"""``dhcp:`` section (owned by the DHCP component)."""

from __future__ import annotations

from ipaddress import IPv4Address

from pydantic import Field

from regional_client.config.base import Duration, Section


class IpRange(Section):
    start: IPv4Address
    end: IPv4Address


class DhcpConfig(Section):
    enabled: bool = True
    interface: str | None = "eth1"
    """Interface that local (non-relayed) clients are served on."""
    listen_addr: IPv4Address = IPv4Address("0.0.0.0")
    port: int = Field(67, ge=1, le=65535)
    ip_range: IpRange | None = None
    """Dynamic pool; absent: static bindings only."""
    netmask: IPv4Address = IPv4Address("255.255.255.0")
    gateway: IPv4Address | None = None
    dns_servers: list[IPv4Address] = Field(default_factory=list)
    tftp_server: IPv4Address | None = None
    """Also the DHCP server identifier (option 54) unless ``server_id`` is set."""
    server_id: IPv4Address | None = None
    boot_file: str = "pxelinux.0"
    lease_time: Duration = 3600.0
