"""Structured JSON logging with the seed's fields and size/count/age rotation.

Every line is one JSON object: ``time, level, idc, module, action, mac, ip, message`` plus any
other context given (``sn``, ``task_id``, ``step``...). Use :func:`get_logger`::

    log = get_logger("dhcp")
    log.info("DHCP lease assigned to server", action="lease_assigned", mac=mac, ip=ip)

Fields whose name looks secret (password, token, secret, key material) are replaced by ``***``
before formatting, so a careless call cannot leak a credential into a log file.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = "regional_client"
_SECRET_WORDS = ("password", "passwd", "token", "secret", "private_key", "authorization")
_STATE: dict[str, Any] = {"idc": "-"}


def _redact(key: str, value: Any) -> Any:
    k = key.lower()
    if any(w in k for w in _SECRET_WORDS) and value not in (None, ""):
        return "***"
    return value


_MAC_OF: list[Callable[[str], str | None]] = []


def set_mac_resolver(fn: Callable[[str], str | None] | None) -> None:
    """Let every log line that names a serial (``sn``) but no ``mac`` carry the server's MAC
    (the regional client passes its task cache's lookup)."""
    _MAC_OF[:] = [fn] if fn is not None else []


def _mac_for(sn: Any) -> str:
    if not _MAC_OF or not isinstance(sn, str) or not sn:
        return ""
    try:
        return _MAC_OF[0](sn) or ""
    except Exception:  # a log line must never fail because of the lookup
        return ""


class JsonFormatter(logging.Formatter):
    """One JSON object per record with the seed's fields first."""

    def format(self, record: logging.LogRecord) -> str:
        cached = getattr(record, "_rc_json", None)
        if cached is not None:  # the same record going to a second handler
            return str(cached)
        fields: dict[str, Any] = getattr(record, "fields", {}) or {}
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "idc": _STATE["idc"],
            "module": getattr(record, "module_name", None) or record.name.removeprefix(ROOT + "."),
            "action": fields.get("action", ""),
            "mac": fields.get("mac") or _mac_for(fields.get("sn")),
            "ip": fields.get("ip", ""),
            "message": record.getMessage(),
        }
        for k, v in fields.items():
            if k not in out:
                out[k] = _redact(k, v)
        if record.exc_info and record.exc_info[0] is not None:
            out["exception"] = self.formatException(record.exc_info)
        text = json.dumps(out, default=str, ensure_ascii=False)
        record._rc_json = text
        return text


class StructLogger:
    """A thin wrapper: ``log.info(msg, **fields)``; ``bind(**fields)`` returns a child."""

    __slots__ = ("_fields", "_logger", "_module")

    def __init__(self, module: str, fields: dict[str, Any] | None = None) -> None:
        self._module = module
        self._logger = logging.getLogger(f"{ROOT}.{module}")
        self._fields = fields or {}

    def bind(self, **fields: Any) -> StructLogger:
        return StructLogger(self._module, {**self._fields, **fields})

    def _log(self, level: int, msg: str, exc_info: Any, fields: dict[str, Any]) -> None:
        if self._logger.isEnabledFor(level):
            merged = {**self._fields, **fields}
            self._logger.log(
                level,
                msg,
                exc_info=exc_info,
                extra={"fields": merged, "module_name": self._module},
            )

    def debug(self, msg: str, **fields: Any) -> None:
        self._log(logging.DEBUG, msg, None, fields)

    def info(self, msg: str, **fields: Any) -> None:
        self._log(logging.INFO, msg, None, fields)

    def warning(self, msg: str, **fields: Any) -> None:
        self._log(logging.WARNING, msg, None, fields)

    def error(self, msg: str, exc_info: Any = None, **fields: Any) -> None:
        self._log(logging.ERROR, msg, exc_info, fields)

    def exception(self, msg: str, **fields: Any) -> None:
        self._log(logging.ERROR, msg, True, fields)


def get_logger(module: str) -> StructLogger:
    return StructLogger(module)


class AgeSizeRotatingHandler(logging.handlers.RotatingFileHandler):
    """Size/count rotation (stdlib) plus deletion of rotated files older than ``max_age_days``."""

    def __init__(self, filename: Path, max_bytes: int, backups: int, max_age_days: int) -> None:
        filename.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(filename, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self.max_age_days = max_age_days

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        """By the file's position: the stdlib formats every record a second time to measure it."""
        if self.stream is None:
            self.stream = self._open()
        return self.maxBytes > 0 and self.stream.tell() >= self.maxBytes

    def doRollover(self) -> None:
        super().doRollover()
        self.prune_old()

    def prune_old(self, now: float | None = None) -> None:
        if not self.max_age_days:
            return
        limit = (now or time.time()) - self.max_age_days * 86400
        base = Path(self.baseFilename)
        for p in base.parent.glob(base.name + ".*"):
            try:
                if p.stat().st_mtime < limit:
                    p.unlink()
            except OSError:
                pass


def setup_logging(
    idc: str,
    level: str = "info",
    file: Path | None = None,
    max_size_mb: int = 100,
    max_backups: int = 10,
    max_age_days: int = 30,
    stderr: bool = True,
) -> None:
    """Configure the ``regional_client`` logger tree (idempotent: replaces earlier handlers)."""
    _STATE["idc"] = idc
    root = logging.getLogger(ROOT)
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    root.setLevel(getattr(logging, level.upper()))
    root.propagate = False
    fmt = JsonFormatter()
    if file is not None:
        fh = AgeSizeRotatingHandler(
            Path(file), max_size_mb * 1024 * 1024, max_backups, max_age_days
        )
        fh.prune_old()
        fh.setFormatter(fmt)
        root.addHandler(fh)
    if stderr or file is None:
        sh = logging.StreamHandler(sys.stderr)
        sh.setFormatter(fmt)
        root.addHandler(sh)
