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
    stderr: bool = True
    """Also write log lines to stderr."""
