"""Audit log: one JSON line per admin call, BMC command and switch change.

A record says who (``actor``: admin token name, ``workflow``, ``agent:<sn>``), what (``action``),
on what (``target``), the ``result`` (``ok`` or an error text) and details. Details are redacted
like log fields: nothing whose key looks secret is written. Extra sinks (the per-task audit trail
kept in etcd by the workflow) can subscribe with :meth:`Audit.add_sink`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from regional_client.core.logs import _redact

AuditSink = Callable[[dict[str, Any]], None]


class Audit:
    def __init__(self, path: Path | None, idc: str) -> None:
        self.path = path
        self.idc = idc
        self._lock = threading.Lock()
        self._sinks: list[AuditSink] = []
        self._fh = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 (held open)

    def add_sink(self, sink: AuditSink) -> None:
        self._sinks.append(sink)

    def record(
        self,
        actor: str,
        action: str,
        target: str,
        result: str = "ok",
        sn: str | None = None,
        **details: Any,
    ) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "idc": self.idc,
            "actor": actor,
            "action": action,
            "target": target,
            "result": result,
        }
        if sn:
            rec["sn"] = sn
        for k, v in details.items():
            rec[k] = _redact(k, v)
        line = json.dumps(rec, default=str, ensure_ascii=False)
        with self._lock:
            if self._fh is not None:
                self._fh.write(line + "\n")
                self._fh.flush()
        for sink in self._sinks:
            sink(rec)
        return rec

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
