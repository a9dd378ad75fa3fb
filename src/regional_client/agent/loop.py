"""The agent's operation loop (the seed's "flow 2").

::

    report → isInInstallQueue → getNextOperation → run it → operationComplete → ...

until ``reboot`` (all done: run the reboot command, the machine boots its installed OS). When
the server is not in the install queue or has nothing to do (``none``), the loop polls slowly
(``idle_interval``), or returns at once with ``once``. A 404 from a device endpoint (the task
was deleted) counts as "not in the queue". Transient failures are retried inside
:class:`~regional_client.agent.client.AgentClient`; a refused request (401, 422...) ends the
loop with :class:`~regional_client.agent.client.AgentApiError`.
"""

from __future__ import annotations

import asyncio
import enum
import os
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from regional_client.agent.client import AgentApiError, AgentClient, Operation
from regional_client.agent.installers.base import OpResult
from regional_client.agent.operations import OpContext, dispatch, script_env
from regional_client.core.logs import get_logger

log = get_logger("agent.loop")


class Outcome(enum.StrEnum):
    REBOOT = "reboot"
    """All operations done; the reboot command ran (or none was configured)."""
    NOTHING_TO_DO = "none"
    """``once``: the server answered ``none``."""
    NOT_IN_QUEUE = "not_in_queue"
    """``once``: the server is not in the install queue."""
    OPERATION_LIMIT = "operation_limit"
    """``max_operations`` operations ran without reaching ``reboot`` (a looping server)."""


@dataclass
class LoopConfig:
    once: bool = False
    idle_interval: float = 30.0
    """Seconds between polls while not in the queue / nothing to do."""
    failure_pause: float = 2.0
    """Seconds to wait after a failed operation before asking for the next one."""
    reboot_cmd: str | None = None
    """Command run on ``reboot`` (split like a shell would, run without one); None: log only."""
    max_operations: int = 1000


Sleep = Callable[[float], Awaitable[None]]


async def run_loop(
    client: AgentClient,
    hardware: dict[str, Any],
    mac: str | None,
    ctx: OpContext,
    cfg: LoopConfig,
    sleep: Sleep = asyncio.sleep,
) -> Outcome:
    """Report, then run operations until ``reboot`` (or, with ``once``, until idle). Until a
    report brought this boot's token, every idle round reports again (that is the claim)."""
    await _report(client, mac, hardware)
    ran = 0
    while ran < cfg.max_operations:
        op = await _next_operation(client) if client.has_token else None
        if op is None or op.name == "none":
            outcome = Outcome.NOT_IN_QUEUE if op is None else Outcome.NOTHING_TO_DO
            if cfg.once:
                return outcome
            await sleep(cfg.idle_interval)
            if not client.has_token:
                await _report(client, mac, hardware)
            continue
        if op.name == "reboot":
            await reboot(cfg.reboot_cmd)
            return Outcome.REBOOT
        ran += 1
        log.info("operation started", action="operation_start", operation=op.name)
        try:
            result = await dispatch(op.name, op.params, ctx)
        except AgentApiError as e:
            if e.status in (401, 403):
                raise
            log.warning("operation abandoned", action="operation_abandoned", reason=str(e))
            await sleep(cfg.failure_pause)
            continue  # the task went away or changed; the next poll says what to do
        log.info(
            "operation finished",
            action="operation_done",
            operation=op.name,
            success=result.success,
            exit_code=result.exit_code,
            result_message=result.message,
        )
        await _complete(client, op.name, result)
        if not result.success:
            await sleep(cfg.failure_pause)
    return Outcome.OPERATION_LIMIT


async def _report(client: AgentClient, mac: str | None, hardware: dict[str, Any]) -> None:
    answer = await client.report(mac, hardware)
    log.info("reported inventory", action="reported", sn=client.sn, status=answer.get("status"),
             session=client.has_token)  # fmt: skip


async def _complete(client: AgentClient, name: str, result: OpResult) -> None:
    """Send operationComplete. A task deleted, failed or cancelled meanwhile (404/409/422) is
    logged and left to the next isInInstallQueue; a refused token (401/403) ends the loop."""
    try:
        await client.operation_complete(
            name, result.success, result.message, result.output, result.exit_code
        )
    except AgentApiError as e:
        if e.status in (401, 403):
            raise
        log.warning("operation result not recorded", action="complete_rejected", reason=str(e))


async def _next_operation(client: AgentClient) -> Operation | None:
    """The next operation, or None when the server is not in the install queue."""
    try:
        if not await client.is_in_install_queue():
            return None
        return await client.get_next_operation()
    except AgentApiError as e:
        if e.status == 403:  # the task left installing: this boot's session is over
            client.forget_token()
            return None
        if e.status == 404:
            return None
        raise


async def reboot(cmd: str | None) -> int | None:
    """Run the reboot command (no shell, secret-free environment); None when not configured."""
    if not cmd:
        log.info("reboot requested; no reboot command configured", action="reboot_skipped")
        return None
    log.info("rebooting", action="reboot", command=cmd)
    await asyncio.to_thread(os.sync)
    proc = await asyncio.create_subprocess_exec(
        *shlex.split(cmd), stdin=asyncio.subprocess.DEVNULL, env=script_env({})
    )
    code = await proc.wait()
    if code != 0:
        log.error("reboot command failed", action="reboot_failed", exit_code=code)
    return code


__all__ = ["LoopConfig", "Outcome", "reboot", "run_loop"]
