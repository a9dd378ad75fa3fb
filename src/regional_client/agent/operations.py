"""Operations the agent knows: ``hardware_config`` (run scripts) and ``os_install`` (installers).

Hardware scripts are written to a private temporary file and run as ``<interpreter> <file>`` in
their own process group with stdin from /dev/null, stdout and stderr merged, a per-script
timeout (the whole group is killed: TERM, then KILL) and an environment without anything that
looks like a secret (the agent token never reaches a child). Output is kept bounded: the first
and last halves of ``max_output`` bytes, with a marker saying how much was cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regional_client.agent.client import AgentApiError, AgentClient, RetriesExhausted, Script
from regional_client.agent.installers import get_installer
from regional_client.agent.installers.base import OpResult, ProgressFn
from regional_client.core.errors import ValidationError
from regional_client.core.logs import get_logger

log = get_logger("agent.ops")
_SECRET_ENV = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")
TIMEOUT_EXIT = 124
"""Exit code reported for a script killed by its timeout (as coreutils ``timeout``)."""


@dataclass
class OpContext:
    """What an operation needs besides its params."""

    client: AgentClient
    installer: str | None = None
    """Default installer when ``params.installer`` is absent (``--installer``)."""
    install_target: str | None = None
    max_output: int = 64 * 1024
    workdir: Path | None = None


class _BoundedOutput:
    """Keeps the first and last ``limit/2`` bytes of a stream and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.half = max(limit // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, data: bytes) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        self.tail += data
        extra = len(self.tail) - self.half
        if extra > 0:
            del self.tail[:extra]
            self.dropped += extra

    def text(self) -> str:
        mid = f"\n[... {self.dropped} bytes truncated ...]\n".encode() if self.dropped else b""
        return bytes(self.head + mid + self.tail).decode("utf-8", errors="replace")


def script_env(extra: dict[str, str]) -> dict[str, str]:
    """The agent's environment minus secret-looking variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not any(w in k.upper() for w in _SECRET_ENV)}
    env.update(extra)
    return env


async def run_script(
    script: Script, env: dict[str, str], max_output: int, workdir: Path | None = None
) -> tuple[int, str]:
    """Run one script; return ``(exit_code, output)``. Never raises for script failures."""
    try:
        argv = shlex.split(script.interpreter)
    except ValueError as e:
        return 127, f"bad interpreter {script.interpreter!r}: {e}"
    if not argv:
        return 127, "empty interpreter"
    with tempfile.TemporaryDirectory(prefix="agent-script-", dir=workdir) as tmp:
        path = Path(tmp) / "script"
        path.write_text(script.content, encoding="utf-8")
        path.chmod(0o700)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                str(path),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                cwd=tmp,
                start_new_session=True,
            )
        except OSError as e:
            return 127, f"cannot start {argv[0]}: {e.strerror}"
        out = _BoundedOutput(max_output)
        reader = asyncio.create_task(_pump(proc, out))
        try:
            code = await asyncio.wait_for(proc.wait(), timeout=script.timeout)
        except TimeoutError:
            await _kill_group(proc)
            code = TIMEOUT_EXIT
            out.add(f"\n[killed: timeout after {script.timeout:g}s]\n".encode())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader, timeout=5)
        return (128 - code if code < 0 else code), out.text()


async def _pump(proc: asyncio.subprocess.Process, out: _BoundedOutput) -> None:
    assert proc.stdout is not None
    while chunk := await proc.stdout.read(65536):
        out.add(chunk)


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            await asyncio.wait_for(proc.wait(), timeout=grace)
            return
        except TimeoutError:
            continue


async def hardware_config(params: dict[str, Any], ctx: OpContext, progress: ProgressFn) -> OpResult:
    """Fetch the scripts and run them in order; stop at the first failure."""
    scripts = await ctx.client.get_hardware_config()
    if not scripts:
        return OpResult(True, "no hardware scripts", output="", exit_code=0)
    env = script_env({"LPMOS_SN": ctx.client.sn, "LPMOS_OPERATION": "hardware_config"})
    sections: list[str] = []
    for i, script in enumerate(scripts):
        await progress(100.0 * i / len(scripts), f"running {script.name}")
        log.info("running hardware script", action="script_start", script=script.name)
        code, output = await run_script(script, env, ctx.max_output, ctx.workdir)
        sections.append(f"== {script.name} (exit {code}) ==\n{output}")
        log.info("hardware script done", action="script_done", script=script.name, exit_code=code)
        if code != 0:
            what = "timed out" if code == TIMEOUT_EXIT else f"failed with exit code {code}"
            return OpResult(False, f"script {script.name} {what}", _join(sections, ctx), code)
    await progress(100.0, f"{len(scripts)} hardware scripts done")
    return OpResult(True, f"{len(scripts)} scripts ok", _join(sections, ctx), 0)


def _join(sections: list[str], ctx: OpContext) -> str:
    out = _BoundedOutput(ctx.max_output)
    out.add("\n".join(sections).encode())
    return out.text()


async def os_install(params: dict[str, Any], ctx: OpContext, progress: ProgressFn) -> OpResult:
    """Pick the installer (params.installer, then --installer, then ``image`` if params.url)."""
    name = params.get("installer") or ctx.installer or ("image" if params.get("url") else None)
    if not name:
        return OpResult(False, "os_install: no installer in params and no --installer default")
    try:
        installer = get_installer(str(name), default_target=ctx.install_target)
    except ValidationError as e:
        return OpResult(False, e.message, exit_code=2)
    return await installer.install(params, progress)


OperationFn = Callable[[dict[str, Any], OpContext, ProgressFn], Awaitable[OpResult]]
OPERATIONS: dict[str, OperationFn] = {"hardware_config": hardware_config, "os_install": os_install}
"""Operation name → implementation. Add entries to teach the agent new operations."""


async def dispatch(name: str, params: dict[str, Any], ctx: OpContext) -> OpResult:
    """Run operation ``name``; unknown operations and unexpected errors become failures."""
    fn = OPERATIONS.get(name)
    if fn is None:
        return OpResult(False, f"unsupported operation {name!r}", exit_code=2)

    async def progress(percent: float, message: str) -> None:
        await ctx.client.progress(name, percent, message)

    try:
        return await fn(params, ctx, progress)
    except (AgentApiError, RetriesExhausted):
        raise  # the regional client refused or vanished: the loop decides
    except Exception as e:  # an operation's bug must be reported, not kill the agent
        log.exception("operation crashed", action="operation_error", operation=name)
        return OpResult(False, f"{name} crashed: {type(e).__name__}: {e}", exit_code=1)


__all__ = ["OPERATIONS", "TIMEOUT_EXIT", "OpContext", "dispatch", "run_script", "script_env"]
