"""What a batch did, told to its callers, the audit log, the metrics and the log.

:class:`ChangeResult` is what ``SwitchManager.configure`` returns; :class:`Reporter` settles each
request's future and writes one audit record per change (the exact lines of that port's block,
the restore lines if any, previous and requested config; never credentials) and one per session
(every line sent).
"""

from __future__ import annotations

from dataclasses import dataclass

from regional_client.core.audit import Audit
from regional_client.core.errors import ProvisionError
from regional_client.core.logs import get_logger
from regional_client.core.metrics import Metrics
from regional_client.drivers.switch.base import PortConfig, SwitchDriver
from regional_client.drivers.switch.batch import Batch, ChangeRequest

log = get_logger("switch")


@dataclass(frozen=True, slots=True)
class PortLocation:
    switch: str
    port: str
    vlan: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {"switch": self.switch, "port": self.port, "vlan": self.vlan}


@dataclass(frozen=True, slots=True)
class ChangeResult:
    """What a change did; ``previous`` is what to restore at cleanup."""

    switch: str
    port: str
    previous: PortConfig
    applied: PortConfig
    commands: list[str]
    saved: bool = False
    batch_size: int = 1

    def to_dict(self) -> dict[str, object]:
        return {
            "switch": self.switch,
            "port": self.port,
            "previous": self.previous.to_dict(),
            "applied": self.applied.to_dict(),
            "commands": self.commands,
            "saved": self.saved,
            "batch_size": self.batch_size,
        }


class Reporter:
    def __init__(self, audit: Audit | None, metrics: Metrics | None) -> None:
        self.audit = audit
        self.metrics = metrics
        if metrics is not None:
            self._changes = metrics.counter(
                "regional_client_switch_changes_total", "Switch port changes", ["switch", "result"]
            )
            self._seconds = metrics.histogram(
                "regional_client_switch_batch_seconds", "Time to apply one batch", ["switch"]
            )

    def batch(self, name: str, batch: Batch, drv: SwitchDriver, seconds: float) -> None:
        if self.metrics is not None:
            self._seconds.labels(idc=self.metrics.idc, switch=name).observe(seconds)
        for req in batch.requests:
            self._settle(name, batch, req)
        if self.audit is not None:
            self.audit.record(
                ",".join(sorted({r.actor for r in batch.requests})),
                "switch.session",
                name,
                seconds=round(seconds, 3),
                changes=len(batch.requests),
                saved=batch.saved,
                sent=list(drv.sent),
            )
        log.info(
            "switch batch applied",
            action="switch_batch",
            switch=name,
            changes=len(batch.requests),
            failed=sum(r.error is not None for r in batch.requests),
            seconds=round(seconds, 3),
        )

    def _settle(self, name: str, batch: Batch, req: ChangeRequest) -> None:
        ok = req.error is None
        if self.metrics is not None:
            result = "ok" if ok else "failed"
            self._changes.labels(idc=self.metrics.idc, switch=name, result=result).inc()
        if not req.future.done():
            if ok:
                req.future.set_result(
                    ChangeResult(
                        name, req.port, req.previous or req.config, req.config, req.commands,
                        batch.saved, len(batch.requests),
                    )
                )  # fmt: skip
            else:
                req.future.set_exception(req.error)  # type: ignore[arg-type]
        if self.audit is not None:
            self.audit.record(
                req.actor,
                "switch.port.configure",
                f"{name}/{req.port}",
                result="ok" if ok else str(req.error),
                sn=req.sn,
                previous=req.previous.to_dict() if req.previous else None,
                requested=req.config.to_dict(),
                commands=req.commands,
                restored=req.restored,
                restore_commands=req.restore_commands,
                batch_size=len(batch.requests),
            )

    def unreachable(self, name: str, batch: Batch, exc: ProvisionError) -> None:
        """No session could be opened: nothing was sent; every request fails with ``exc``."""
        for req in batch.requests:
            if self.metrics is not None:
                self._changes.labels(idc=self.metrics.idc, switch=name, result="failed").inc()
            if not req.future.done():
                req.future.set_exception(exc)
            if self.audit is not None:
                self.audit.record(
                    req.actor,
                    "switch.port.configure",
                    f"{name}/{req.port}",
                    result=str(exc),
                    sn=req.sn,
                    requested=req.config.to_dict(),
                    commands=[],
                )


__all__ = ["ChangeResult", "PortLocation", "Reporter"]
