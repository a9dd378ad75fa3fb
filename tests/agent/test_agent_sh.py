"""The POSIX-sh agent run by busybox (PATH holding nothing but busybox applets, as in a
busybox-only ramdisk) against the real regional client and etcd."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import regional_client.agent as agent_pkg
from regional_client.core.tokens import token_hash
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from tests.agent.conftest import MAC, Regional, free_port
from tests.helpers.agent_session import claim
from tests.helpers.regional import wait_until

AGENT_SH = agent_pkg.AGENT_SH
DUMP = "for f in /proc/[0-9]*/cmdline; do tr '\\000' ' ' < \"$f\" 2>/dev/null; echo; done"


@pytest.fixture(scope="module")
def busybox_bin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory with one symlink per busybox applet: the ramdisk's whole userland."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.fail("busybox is required (Debian package busybox)")
    d = tmp_path_factory.mktemp("bin")
    applets = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True)
    for name in applets.stdout.split():
        (d / name).symlink_to(busybox)
    yield d


async def run_sh_agent(
    busybox_bin: Path, cmdline: Path, timeout: float = 30, **env: str
) -> tuple[int, str]:
    """Run agent.sh; its log goes to a file so a hang still shows how far it got."""
    full_env = {"PATH": str(busybox_bin), "AGENT_IDLE": "0.2", "AGENT_FAILURE_PAUSE": "0", **env}
    log = cmdline.with_name(f"agent-{os.urandom(3).hex()}.log")
    with log.open("wb") as f:
        proc = await asyncio.create_subprocess_exec(
            str(busybox_bin / "sh"), str(AGENT_SH), str(cmdline),
            stdout=f, stderr=subprocess.STDOUT, env=full_env, start_new_session=True,
        )  # fmt: skip
        try:
            await asyncio.wait_for(proc.wait(), timeout=timeout)
        except TimeoutError:
            os.killpg(proc.pid, 9)
            await proc.wait()
            pytest.fail(f"sh agent hung; its log:\n{log.read_text(errors='replace')}")
    assert proc.returncode is not None
    return proc.returncode, log.read_text(errors="replace")


def _cmdline(tmp_path: Path, url: str, sn: str, extra: str = "") -> Path:
    f = tmp_path / "cmdline"
    f.write_text(
        f"BOOT_IMAGE=/vmlinuz console=ttyS0 regional_url={url} sn={sn} "
        f"BOOTIF=01-{MAC.upper().replace(':', '-')} {extra} -- sn=not-this\n"
    )
    return f


async def _task(store: EtcdStore, keys: Keys, sn: str) -> dict[str, Any]:
    kv = await store.get(keys.task(sn))
    assert kv is not None
    return kv.value


async def test_sh_agent_completes_task(
    busybox_bin: Path, regional: Regional, etcd_store: EtcdStore, keys: Keys, tmp_path: Path
) -> None:
    sn = "SN-SH-1"
    seen = tmp_path / "seen.txt"
    tricky = 'printf \'%s\\n\' "quote\\" back\\\\slash \ttab"; echo "ütf-8 ✓"; echo err >&2'
    scripts = [
        {"name": "tricky", "interpreter": "sh", "content": tricky, "timeout": 30},
        {"name": "dump", "interpreter": "sh", "content": f"{{ {DUMP}; env; }} > {seen}",
         "timeout": 30},
    ]  # fmt: skip
    await regional.add_task(etcd_store, keys, sn, hardware_scripts=scripts)
    marker = tmp_path / "rebooted"
    code, out = await run_sh_agent(
        busybox_bin,
        _cmdline(tmp_path, regional.url, sn),
        AGENT_REBOOT_CMD=f"touch {marker}",
    )
    assert code == 0, out
    assert marker.exists(), out
    assert seen.exists(), out
    task = await _task(etcd_store, keys, sn)
    issued = task["agent_session"]["token_sha256"]  # the token itself is stored nowhere
    for text in (out, seen.read_text()):
        words = set(re.findall(r"[A-Za-z0-9_=-]{16,}", text))
        assert issued not in {token_hash(w) for w in words}
    hw = task["results"]["hardware_config"]
    assert (hw["status"], hw["exit_code"], hw["message"]) == ("done", 0, "2 scripts ok")
    assert task["results"]["os_install"]["status"] == "done"
    kv = await etcd_store.get(keys.server(sn))
    assert kv is not None
    server = kv.value
    assert server["macs"] == [MAC] and server["state"] == "installing"
    inv = server["hardware"]
    assert inv["agent"] == "sh" and inv["cpu"]["count"] == os.cpu_count()
    meminfo = Path("/proc/meminfo").read_text().split("\n")[0]
    assert inv["memory"]["total_bytes"] == int(meminfo.split()[1]) * 1024
    assert {n["name"] for n in inv["nics"]} == {
        p.name for p in Path("/sys/class/net").iterdir() if p.name != "lo"
    }


async def test_sh_agent_script_failure_output_and_timeout(
    busybox_bin: Path, regional: Regional, etcd_store: EtcdStore, keys: Keys, tmp_path: Path
) -> None:
    sn = "SN-SH-FAIL"
    scripts = [
        {"name": "slow", "interpreter": "sh", "content": "echo before; sleep 30", "timeout": 1},
    ]
    await regional.add_task(etcd_store, keys, sn, hardware_scripts=scripts)
    code, out = await run_sh_agent(
        busybox_bin, _cmdline(tmp_path, regional.url, sn, "agent_once=1")
    )
    assert code == 0, out
    assert "nothing to do: no agent session for this boot yet (not in the install queue)" in out
    task = await _task(etcd_store, keys, sn)
    assert task["status"] == "failed"
    res = task["results"]["hardware_config"]
    assert (res["exit_code"], res["message"]) == (124, "script slow timed out")


async def test_sh_agent_waits_for_regional_client(
    busybox_bin: Path, regional: Regional, etcd_store: EtcdStore, keys: Keys, tmp_path: Path
) -> None:
    sn = "SN-SH-RESTART"
    await regional.add_task(etcd_store, keys, sn)
    await regional.stop()
    agent = asyncio.create_task(
        run_sh_agent(
            busybox_bin,
            _cmdline(tmp_path, regional.url, sn),
            AGENT_REBOOT_CMD="true",
            AGENT_BACKOFF_MAX="1",
        )
    )

    def retrying() -> bool:
        return any("retry 2 " in p.read_text() for p in tmp_path.glob("agent-*.log"))

    await wait_until(retrying, timeout=30)  # the agent retries against the closed port
    assert not agent.done()
    await regional.start()
    code, out = await agent
    assert code == 0, out
    assert "/report: status 000, retry" in out
    task = await _task(etcd_store, keys, sn)
    assert {k: v["status"] for k, v in task["results"].items()} == {
        "hardware_config": "done",
        "os_install": "done",
    }


async def test_sh_agent_fake_sys_tree_and_missing_interpreter(
    busybox_bin: Path, regional: Regional, etcd_store: EtcdStore, keys: Keys, tmp_path: Path
) -> None:
    """sn from DMI (``sn=auto``), MAC from the first NIC with link, inventory from AGENT_SYS;
    a script whose interpreter is absent fails with 127."""
    sys_root = tmp_path / "sys"
    dmi = sys_root / "class/dmi/id"
    dmi.mkdir(parents=True)
    (dmi / "sys_vendor").write_text("Dell Inc.\n")
    (dmi / "product_name").write_text('PowerEdge "R650"\n')
    (dmi / "product_serial").write_text("SN-SH-DMI\n")
    for name, mac, carrier in (("eno1", "AA:00:00:00:00:01", "0"), ("eno2", MAC, "1")):
        nic = sys_root / "class/net" / name
        (nic / "device").mkdir(parents=True)
        (nic / "address").write_text(mac + "\n")
        (nic / "carrier").write_text(carrier + "\n")
    disk = sys_root / "block/sda"
    (disk / "queue").mkdir(parents=True)
    (disk / "size").write_text("2048\n")
    (disk / "queue/rotational").write_text("1\n")
    (sys_root / "block/loop0").mkdir()
    sn = "SN-SH-DMI"
    scripts = [{"name": "py", "interpreter": "python3", "content": "print(1)", "timeout": 5}]
    await regional.add_task(etcd_store, keys, sn, hardware_scripts=scripts)
    cmdline = tmp_path / "cmdline"
    cmdline.write_text(f"regional_url={regional.url}/ sn=auto agent_once=1\n")
    code, out = await run_sh_agent(busybox_bin, cmdline, AGENT_SYS=str(sys_root))
    assert code == 0, out
    kv = await etcd_store.get(keys.server(sn))
    assert kv is not None
    inv = kv.value["hardware"]
    assert kv.value["macs"] == [MAC]
    assert inv["system"] == {"vendor": "Dell Inc.", "product": 'PowerEdge "R650"',
                             "serial": "SN-SH-DMI"}  # fmt: skip
    assert inv["disks"] == [{"name": "sda", "size_bytes": 2048 * 512, "rotational": True}]
    assert [n["name"] for n in inv["nics"]] == ["eno1", "eno2"]
    res = (await _task(etcd_store, keys, sn))["results"]["hardware_config"]
    assert (res["status"], res["exit_code"]) == ("failed", 127)


async def test_sh_agent_second_claim_and_unreachable(
    busybox_bin: Path, regional: Regional, etcd_store: EtcdStore, keys: Keys, tmp_path: Path
) -> None:
    sn = "SN-SH-BAD"
    await regional.add_task(etcd_store, keys, sn)
    stolen = (await claim(regional.url, sn, MAC)).json()["token"]
    code, out = await run_sh_agent(busybox_bin, _cmdline(tmp_path, regional.url, sn))
    assert code == 3 and "report refused (409)" in out and stolen not in out
    url = f"http://127.0.0.1:{free_port()}"
    code, out = await run_sh_agent(busybox_bin, _cmdline(tmp_path, url, sn), AGENT_MAX_TRIES="2")
    assert code == 4 and "giving up on /report after 2 tries" in out


async def test_sh_agent_discovery_without_token(
    busybox_bin: Path, regional: Regional, etcd_store: EtcdStore, keys: Keys, tmp_path: Path
) -> None:
    sn = "SN-SH-DISCOVER"
    code, out = await run_sh_agent(
        busybox_bin, _cmdline(tmp_path, regional.url, sn, "agent_once=1")
    )
    assert code == 0 and "nothing to do: no agent session for this boot yet (discovered)" in out
    kv = await etcd_store.get(keys.server(sn))
    assert kv is not None and kv.value["state"] == "discovered"


def test_sh_agent_is_posix_sh() -> None:
    """Parses under dash (Debian's POSIX /bin/sh) and busybox ash."""
    for shell in ("dash", "busybox"):
        argv = [shell, "-n"] if shell == "dash" else [shell, "sh", "-n"]
        if shutil.which(shell):
            subprocess.run([*argv, str(AGENT_SH)], check=True)
