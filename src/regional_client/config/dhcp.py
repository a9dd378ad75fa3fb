"""``dhcp:`` section (owned by the DHCP component).

The seed's keys (``enabled, interface, ip_range, gateway, dns_servers, tftp_server, boot_file,
lease_time``) keep working; everything else has a default, so a ten-line config serves PXE.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from pydantic import Field, model_validator

from regional_client.config.base import Duration, Section


class IpRange(Section):
    start: IPv4Address
    end: IPv4Address

    @model_validator(mode="after")
    def _order(self) -> IpRange:
        if int(self.end) < int(self.start):
            raise ValueError("end must not be before start")
        return self


class RelaySubnet(Section):
    """A remote install subnet reached through a DHCP relay (``ip helper-address``)."""

    subnet: IPv4Network
    """The subnet, e.g. ``10.20.0.0/24``; a relayed request is served from the subnet that
    contains its ``giaddr``."""
    gateway: IPv4Address | None = None
    """Router (option 3) handed to clients; default: the relay's giaddr."""
    ip_range: IpRange | None = None
    """Dynamic pool inside ``subnet``; absent: static bindings only."""
    dns_servers: list[IPv4Address] | None = None
    """DNS (option 6); default: the top-level ``dns_servers``."""
    lease_time: Duration | None = None
    """Default: the top-level ``lease_time``."""

    @model_validator(mode="after")
    def _inside(self) -> RelaySubnet:
        r = self.ip_range
        if r is not None and (r.start not in self.subnet or r.end not in self.subnet):
            raise ValueError(f"ip_range must lie inside {self.subnet}")
        return self


def _default_boot_files() -> dict[int, str]:
    return {
        0: "pxelinux.0",
        6: "ipxe-i386.efi",
        7: "grubnetx64.efi",
        9: "grubnetx64.efi",
        10: "grubnetarm.efi",
        11: "grubnetaa64.efi",
        16: "{regional_url}/boot/files/ipxe.efi",
        19: "{regional_url}/boot/files/ipxe-arm64.efi",
    }


class DhcpConfig(Section):
    enabled: bool = True
    interface: str | None = "eth1"
    """Interface that local (non-relayed) clients are served on (``SO_BINDTODEVICE``).
    ``null``: no local service, relayed requests only."""
    listen_addr: IPv4Address = IPv4Address("0.0.0.0")
    """Address the relay socket binds to (relayed requests arrive unicast here)."""
    port: int = Field(67, ge=1, le=65535)
    """Server port (67; the non-root demo uses an unprivileged port)."""
    client_port: int = Field(68, ge=1, le=65535)
    """Port replies to local clients go to (68)."""
    relay_reply_port: int = Field(67, ge=1, le=65535)
    """Port replies to a relay (giaddr) go to (67; the demo's simulated relay uses another)."""
    ip_range: IpRange | None = None
    """Dynamic pool of the local subnet; absent: static bindings only."""
    subnet: IPv4Network | None = None
    """Local subnet; default: derived from ``ip_range.start`` (or ``server_id``/``tftp_server``)
    and ``netmask``."""
    netmask: IPv4Address = IPv4Address("255.255.255.0")
    gateway: IPv4Address | None = None
    dns_servers: list[IPv4Address] = Field(default_factory=list)
    domain_name: str | None = None
    """Option 15, when set."""
    tftp_server: IPv4Address | None = None
    """Next server (siaddr, option 66). Also the server identifier unless ``server_id`` is set."""
    server_id: IPv4Address | None = None
    """Server identifier (option 54); default ``tftp_server``, else the interface address."""
    boot_file: str = "pxelinux.0"
    """Boot file for BIOS clients (architecture 0) and any architecture not in ``boot_files``."""
    boot_files: dict[int, str] = Field(default_factory=_default_boot_files)
    """Boot file by client architecture (option 93): 0 BIOS, 6 UEFI ia32, 7/9 UEFI x64,
    10/11 ARM, 16/19 UEFI HTTP boot (a full URL; the reply carries option 60 ``HTTPClient``).
    ``{regional_url}`` is replaced. A binding's ``boot_file`` overrides it."""
    ipxe_script_url: str = "{regional_url}/boot/ipxe/{mac}"
    """What iPXE clients (user class ``iPXE`` or option 175) get instead of a ROM loader, so
    they chain-load their per-MAC script and never loop. ``{regional_url}``, ``{mac}``."""
    lease_time: Duration = 3600.0
    offer_timeout: Duration = 60.0
    """How long an offered address stays reserved for the client it was offered to."""
    decline_quarantine: Duration = 600.0
    """How long an address a client declined (already in use) is kept out of the pool."""
    relay_subnets: list[RelaySubnet] = Field(default_factory=list)
    """Remote subnets served through relays, chosen by ``giaddr``."""
    persist_batch: int = Field(256, ge=1, le=4096)
    """Most lease writes sent to etcd at once; acknowledgements wait for their write."""
    persist_timeout: Duration = 10.0
    """Longest wait for a lease write; past it the waiting replies are dropped (clients
    retry) and the next batch is tried."""

    @model_validator(mode="after")
    def _check(self) -> DhcpConfig:
        if self.ip_range is not None and self.local_subnet() is not None:
            net = self.local_subnet()
            assert net is not None
            if self.ip_range.start not in net or self.ip_range.end not in net:
                raise ValueError(f"ip_range must lie inside the local subnet {net}")
        return self

    def local_subnet(self) -> IPv4Network | None:
        """The subnet of the local interface, or None when it cannot be derived."""
        if self.subnet is not None:
            return self.subnet
        for addr in (
            self.ip_range.start if self.ip_range else None,
            self.server_id,
            self.tftp_server,
            self.gateway,
        ):
            if addr is not None:
                return IPv4Network(f"{addr}/{self.netmask}", strict=False)
        return None
