"""``logging:`` section: JSON log lines, file rotation, audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from regional_client.config.base import Section


class LoggingConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    file: Path | None = None
    """Log file; absent: JSON lines on stderr only."""
    max_size: int = Field(100, ge=1)
    """Rotate when the file reaches this many MB."""
    max_backups: int = Field(10, ge=0)
    """Rotated files kept."""
    max_age: int = Field(30, ge=0)
    """Days a rotated file is kept (0: forever)."""
    audit_file: Path | None = None
    """Audit log (JSON lines). Default: ``audit.log`` in the state dir."""
    audit_trail_max_age: int = Field(90, ge=0)
    """Days a server's audit trail in etcd keeps a record (0: forever). The local audit file
    keeps everything, rotated by the operator's own tools."""
    audit_trail_max_records: int = Field(2000, ge=0)
    """Newest audit trail records kept per server in etcd (0: no limit; ~60 per install)."""
    stderr: bool = True
    """Also write log lines to stderr."""
