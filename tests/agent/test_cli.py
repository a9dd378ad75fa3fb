"""``regional-client agent`` as a process: kernel command line in, task done, no token leaked."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

from regional_client.core.tokens import token_hash
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from tests.agent.conftest import MAC, Regional, free_port
from tests.helpers.agent_session import claim

SRC = Path(__file__).resolve().parents[2] / "src"
DUMP = "for f in /proc/[0-9]*/cmdline; do tr '\\000' ' ' < \"$f\" 2>/dev/null; echo; done"


async def _agent(*argv: str) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "regional_client.agent",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_agent_process_completes_task_without_leaking_token(
    regional: Regional, etcd_store: EtcdStore, keys: Keys, tmp_path: Path
) -> None:
    sn = "SN-CLI-1"
    seen = tmp_path / "seen-by-script.txt"
    at_reboot = tmp_path / "seen-at-reboot.txt"
    scripts = [
        {"name": "dump", "interpreter": "/bin/sh", "content": f"{{ {DUMP}; env; }} > {seen}"}
    ]
    await regional.add_task(etcd_store, keys, sn, hardware_scripts=scripts)
    cmdline = tmp_path / "cmdline"
    cmdline.write_text(
        f"console=ttyS0 regional_url={regional.url} sn={sn} "
        f"BOOTIF=01-{MAC.replace(':', '-')} agent_installer=noop quiet\n"
    )
    reboot = tmp_path / "reboot.sh"
    reboot.write_text(f"{{ {DUMP}; env; }} > {at_reboot}\n")
    code, out, err = await _agent(
        "--cmdline", str(cmdline), "--reboot-cmd", f"/bin/sh {reboot}", "--log-level", "debug"
    )
    assert code == 0, err
    kv = await etcd_store.get(keys.task(sn))
    assert kv is not None
    issued = kv.value["agent_session"]["token_sha256"]  # the token itself is nowhere stored
    for text in (out, err, seen.read_text(), at_reboot.read_text()):
        words = set(re.findall(r"[A-Za-z0-9_=-]{16,}", text))
        assert issued not in {token_hash(w) for w in words}
    assert sn in seen.read_text() and "LPMOS_SN=" + sn in seen.read_text()
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(rec.get("action") == "reboot" for rec in logs)
    assert {k: v["status"] for k, v in kv.value["results"].items()} == {
        "hardware_config": "done",
        "os_install": "done",
    }


async def test_second_claim_exit_code_and_no_leak(
    regional: Regional, etcd_store: EtcdStore, keys: Keys, tmp_path: Path
) -> None:
    """Another report claimed this boot's token first: the agent is refused (409), exits 3."""
    sn = "SN-CLI-BAD"
    await regional.add_task(etcd_store, keys, sn)
    stolen = (await claim(regional.url, sn, MAC)).json()["token"]
    code, out, err = await _agent(
        "--cmdline", str(tmp_path / "none"), "--regional-url", regional.url, "--sn", sn,
        "--mac", MAC, "--reboot-cmd", "", "--no-bmc",
    )  # fmt: skip
    assert code == 3
    assert stolen not in out + err and "409" in err


def test_no_token_flag_or_environment() -> None:
    """The token has no way in but the report's answer (no flag, no variable)."""
    import argparse

    from regional_client.agent.main import add_arguments

    p = argparse.ArgumentParser(allow_abbrev=False)
    add_arguments(p)
    assert not [a for a in p._actions if "token" in " ".join(a.option_strings)]


async def test_missing_settings_exit_2(tmp_path: Path) -> None:
    code, _, err = await _agent("--cmdline", str(tmp_path / "none"), "--sn", "X", "--no-bmc")
    assert code == 2 and "missing regional_url" in err


async def test_unreachable_gives_up_with_exit_4(tmp_path: Path) -> None:
    code, _, err = await _agent(
        "--cmdline", str(tmp_path / "none"), "--regional-url", f"http://127.0.0.1:{free_port()}",
        "--sn", "X", "--mac", MAC, "--max-retry-time", "1", "--no-bmc",
    )  # fmt: skip
    assert code == 4 and "unreachable" in err
