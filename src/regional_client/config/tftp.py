"""``tftp:`` section (owned by the boot-files component)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from regional_client.config.base import Duration, Section


class TftpConfig(Section):
    enabled: bool = True
    root_dir: Path = Path("/tftpboot")
    listen_addr: str = ":69"
    max_clients: int = Field(100, ge=1)
    timeout: Duration = 30.0
    """Whole-transfer timeout."""
    block_size: int = Field(512, ge=8, le=65464)
    """Largest blksize granted to a client that asks for more."""
