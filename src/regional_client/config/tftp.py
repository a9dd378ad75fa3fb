"""``tftp:`` section (owned by the boot-files component)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, field_validator

from regional_client.config.base import Duration, Section


class TftpConfig(Section):
    enabled: bool = True
    """Serve TFTP at all (HTTP boot and the PXE generator work without it)."""
    root_dir: Path = Path("/tftpboot")
    """Served directory; nothing outside it is ever served (also the HTTP boot root)."""
    listen_addr: str = ":69"
    """``host:port``; ``:69`` means every IPv4 address. Replies leave from the address asked."""
    max_clients: int = Field(100, ge=1)
    """Simultaneous transfers. When full, a new request takes the slot of the oldest transfer
    whose client never acknowledged anything (a flood of requests that are never ACKed cannot
    lock real clients out); with no such transfer it gets a TFTP "server busy" error."""
    max_transfers_per_source: int = Field(4, ge=1)
    """Simultaneous transfers to one client address (PXE firmware and loaders fetch one file at
    a time); more get "too many transfers"."""
    netascii_max: int = Field(4 * 1024 * 1024, ge=0)
    """Largest file served in netascii mode (converted while sent, never held in memory);
    larger files must use octet mode. 0 refuses netascii."""
    timeout: Duration = 30.0
    """Transfer timeout: a transfer with no acknowledged progress for this long is aborted."""
    block_size: int = Field(65464, ge=8, le=65464)
    """Largest ``blksize`` granted (RFC 2348) to a client asking for more. Clients that do not
    ask get 512 as RFC 1350 requires. (The seed's example of 512 caps every client at 512.)"""
    max_window_size: int = Field(64, ge=1, le=65535)
    """Largest ``windowsize`` granted (RFC 7440)."""
    retransmit_timeout: Duration = 1.0
    """Resend an unacknowledged window after this long, unless the client negotiated
    ``timeout`` (RFC 2349), which then wins."""
    retries: int = Field(5, ge=0, le=100)
    """Retransmissions of one window before the transfer is abandoned."""

    @field_validator("listen_addr")
    @classmethod
    def _listen(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("use host:port, e.g. ':69' or '192.168.100.1:69'")
        host = host.strip("[]")
        if host:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise ValueError(f"{host!r} is not an IP address") from None
        return v

    @field_validator("retransmit_timeout")
    @classmethod
    def _rto(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be positive")
        return v
