"""One batch of port changes applied in one session: read, apply, verify, restore (pure flow).

Kept apart from :mod:`.manager` (queues, sessions, audit) so the safety logic reads top to
bottom: remember → apply all → read back each → restore each failure → optional save.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from regional_client.core.errors import CommandFailed, ProvisionError, SwitchError
from regional_client.drivers.switch.base import PortChange, PortConfig, SwitchDriver


@dataclass(eq=False)
class ChangeRequest:
    port: str
    config: PortConfig
    actor: str
    sn: str | None
    future: asyncio.Future[Any]
    previous: PortConfig | None = None
    commands: list[str] = field(default_factory=list)
    restore_commands: list[str] = field(default_factory=list)
    restored: bool = False
    error: ProvisionError | None = None


@dataclass
class Batch:
    requests: list[ChangeRequest]
    saved: bool = False

    def add(self, req: ChangeRequest) -> bool:
        """False when the port is already in this batch (it then waits for the next one)."""
        if any(r.port == req.port for r in self.requests):
            return False
        self.requests.append(req)
        return True

    def fail_all(self, exc: ProvisionError) -> None:
        for r in self.requests:
            if r.error is None:
                r.error = exc

    def live(self) -> list[ChangeRequest]:
        return [r for r in self.requests if r.error is None]


async def run_batch(drv: SwitchDriver, batch: Batch, save: bool = False) -> None:
    """Apply ``batch`` through an open driver session; failures land on each request."""
    live = batch.live()
    before = await drv.get_port_configs([r.port for r in live]) if live else {}
    for r in live:
        prev = before[r.port]
        if isinstance(prev, ProvisionError):
            r.error = prev
        else:
            r.previous = prev
    applied = await _apply_all(drv, batch.live())
    failed: list[ChangeRequest] = [r for r in batch.requests if r.error and r.previous]
    after = await drv.get_port_configs([r.port for r in applied]) if applied else {}
    for r in applied:
        got = after[r.port]
        if isinstance(got, ProvisionError):
            raise got  # the session is in doubt: the batch is recovered as a whole
        if not r.config.matches(got):
            r.error = SwitchError(
                f"verification failed on {r.port}: read back {got.mode} {list(got.vlans)[:8]}",
                port=r.port,
                expected=r.config.to_dict(),
                got=got.to_dict(),
            )
            failed.append(r)
    for r in failed:
        await restore_request(drv, r)
    if save and any(r.error is None for r in batch.requests):
        await drv.save_config()
        batch.saved = True


async def _apply_all(drv: SwitchDriver, reqs: list[ChangeRequest]) -> list[ChangeRequest]:
    """One configuration pass; a refused line fails its port and the rest is sent again."""
    applied: list[ChangeRequest] = []
    pending = list(reqs)
    while pending:
        changes = [PortChange(r.port, r.config, r.previous) for r in pending]
        for r, ch in zip(pending, changes, strict=True):
            r.commands = drv.commands_for(ch)
        try:
            await drv.apply(changes)
            applied += pending
            pending = []
        except CommandFailed as exc:
            bad = exc.fields.get("port")
            done = set(exc.fields.get("applied") or ())
            applied += [r for r in pending if r.port in done]
            for r in pending:
                if r.port == bad:
                    r.error = exc
            if bad is None:
                for r in pending:
                    r.error = exc
                return applied
            pending = [r for r in pending if r.port not in done and r.port != bad]
    return applied


async def restore_request(drv: SwitchDriver, r: ChangeRequest) -> None:
    """Apply ``r.previous`` again, read it back, and say in ``r.error`` whether it held."""
    prev = r.previous
    assert prev is not None and r.error is not None
    back = PortChange(r.port, prev, r.config)
    try:
        r.restore_commands = drv.commands_for(back)
        await drv.apply([back])
        got = await drv.get_port_config(r.port)
    except ProvisionError as exc:
        r.error = SwitchError(
            f"{r.error.message}; restoring the previous config failed too: {exc.message}",
            port=r.port,
            restored=False,
            cause=r.error.message,
        )
        return
    r.restored = prev.mode == got.mode and prev.vlans == got.vlans
    r.error = SwitchError(
        f"{r.error.message}; previous config "
        + ("restored" if r.restored else "NOT restored (read back differs)"),
        port=r.port,
        restored=r.restored,
        cause=r.error.message,
    )
