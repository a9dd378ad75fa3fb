"""Hardware script runner: interpreters, timeouts (whole process group), bounded output, env."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from regional_client.agent.client import Script
from regional_client.agent.installers import get_installer, installer_names
from regional_client.agent.installers.base import OpResult
from regional_client.agent.operations import TIMEOUT_EXIT, _BoundedOutput, run_script, script_env
from regional_client.core.errors import ValidationError


def _s(content: str, interpreter: str = "/bin/sh", timeout: float = 30) -> Script:
    return Script(name="t", interpreter=interpreter, content=content, timeout=timeout)


async def test_shell_script_output_and_exit_code() -> None:
    code, out = await run_script(_s("echo out; echo err >&2; exit 7"), script_env({}), 4096)
    assert code == 7
    assert "out" in out and "err" in out


async def test_python_interpreter_and_stdin_is_devnull() -> None:
    script = _s("import sys; print(repr(sys.stdin.read()))", interpreter=sys.executable)
    code, out = await run_script(script, script_env({}), 4096)
    assert (code, out.strip()) == (0, "''")


async def test_interpreter_with_arguments() -> None:
    code, out = await run_script(_s("echo $-", interpreter="/bin/sh -e"), script_env({}), 4096)
    assert code == 0 and "e" in out


async def test_missing_interpreter_is_127() -> None:
    code, out = await run_script(_s("x", interpreter="/nonexistent/ipmi-shell"), {}, 4096)
    assert code == 127 and "cannot start" in out
    code, out = await run_script(_s("x", interpreter='"unbalanced'), {}, 4096)
    assert code == 127 and "bad interpreter" in out


async def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = _s(f"sleep 300 & echo $! > {pidfile}; echo started; wait", timeout=0.5)
    code, out = await run_script(script, script_env({}), 4096)
    assert code == TIMEOUT_EXIT
    assert "started" in out and "timeout after 0.5s" in out
    child = int(pidfile.read_text())
    for _ in range(100):  # the grandchild got SIGTERM with its group; let the kernel reap it
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        stat = Path(f"/proc/{child}/stat").read_text().split(") ")[-1].split()[0]
        if stat == "Z":
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("background child of a timed-out script survived")


async def test_huge_output_is_truncated_head_and_tail() -> None:
    script = _s("echo FIRST; head -c 3000000 /dev/zero | tr '\\0' x; echo; echo LAST")
    code, out = await run_script(script, {}, 1000)
    assert code == 0
    assert out.startswith("FIRST") and out.rstrip().endswith("LAST")
    assert "bytes truncated" in out and len(out) < 1200


def test_bounded_output_counts_dropped() -> None:
    b = _BoundedOutput(10)
    for chunk in (b"abc", b"defgh", b"ijklmnop", b"qrst"):
        b.add(chunk)
    assert b.text() == "abcde\n[... 10 bytes truncated ...]\npqrst"


def test_script_env_has_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGIONAL_AGENT_TOKEN", "t0k")
    monkeypatch.setenv("BMC_PASSWORD", "pw")
    env = script_env({"LPMOS_SN": "SN1"})
    assert "REGIONAL_AGENT_TOKEN" not in env and "BMC_PASSWORD" not in env
    assert env["LPMOS_SN"] == "SN1" and "PATH" in env


async def test_installer_registry_and_noop() -> None:
    assert {"image", "noop"} <= set(installer_names())
    with pytest.raises(ValidationError, match="unknown installer 'zfs'"):
        get_installer("zfs")
    seen: list[tuple[float, str]] = []

    async def progress(pct: float, msg: str) -> None:
        seen.append((pct, msg))

    noop = get_installer("noop", default_target="/dev/sda")
    assert await noop.install({"steps": 3, "delay": 0}, progress) == OpResult(
        True, "noop install done (3 steps)", exit_code=0
    )
    assert [p for p, _ in seen] == pytest.approx([100 / 3, 200 / 3, 100])
    failed = await noop.install({"steps": 1, "delay": 0, "fail": True}, progress)
    assert not failed.success
