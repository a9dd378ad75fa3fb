"""The agent's inventory of THIS machine (``--dry-run``, outside a ramdisk) against the system's
own tools: ``lscpu``/``nproc``, ``/proc/meminfo``/``free``, ``lsblk`` and ``ip -o link``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
SKIP = ("loop", "ram", "zram", "nbd")


def _run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def dry_run() -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    env.pop("REGIONAL_AGENT_TOKEN", None)
    out = subprocess.run(
        [sys.executable, "-m", "regional_client.agent", "--dry-run", "--no-bmc"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    ).stdout
    report = json.loads(out)
    assert set(report) == {"sn", "mac", "hardware"}
    return report


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return dry_run()


def _lscpu() -> dict[str, str]:
    return {
        k.strip(): v.strip()
        for k, _, v in (line.partition(":") for line in _run("lscpu").splitlines())
    }


def test_cpu_matches_lscpu_and_nproc(report: dict[str, Any]) -> None:
    cpu = report["hardware"]["cpu"]
    ls = _lscpu()
    assert cpu["count"] == int(ls["CPU(s)"]) == int(_run("nproc", "--all"))
    assert cpu["sockets"] == int(ls["Socket(s)"])
    assert cpu["cores_per_socket"] == int(ls["Core(s) per socket"])
    assert cpu["threads_per_core"] == int(ls["Thread(s) per core"])
    if "Model name" in ls:
        assert cpu["model"] == ls["Model name"]
    online = ls.get("On-line CPU(s) list")
    if online:
        from regional_client.agent.inventory import parse_cpu_list

        assert cpu["online"] == len(parse_cpu_list(online))


def test_memory_matches_meminfo_and_free(report: dict[str, Any]) -> None:
    mem = report["hardware"]["memory"]
    kb = int(re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)[1])
    assert mem["total_bytes"] == kb * 1024
    free_total = int(_run("free", "-b").splitlines()[1].split()[1])
    assert mem["total_bytes"] == free_total


def test_disks_match_lsblk(report: dict[str, Any]) -> None:
    rows = [
        dict(re.findall(r'(\w+)="([^"]*)"', line))
        for line in _run("lsblk", "-b", "-d", "-n", "-P", "-o", "NAME,SIZE,ROTA,TYPE").splitlines()
    ]
    expected = {
        r["NAME"]: (int(r["SIZE"]), r["ROTA"] == "1")
        for r in rows
        if r["TYPE"] == "disk" and not r["NAME"].startswith(SKIP)
    }
    got = {d["name"]: (d["size_bytes"], d["rotational"]) for d in report["hardware"]["disks"]}
    assert expected, "lsblk lists no disk on this machine"
    assert got == expected


def _ip_links() -> dict[str, dict[str, Any]]:
    links = {}
    for line in _run("ip", "-o", "link").splitlines():
        m = re.match(r"^\d+: ([^:@]+)(?:@[^:]+)?: <([^>]*)>.*?link/(\S+)(?: (\S+))?", line)
        assert m, line
        name, flags, kind, addr = m.groups()
        if kind == "loopback":
            continue
        links[name] = {
            "mac": addr.lower() if kind == "ether" else None,
            "lower_up": "LOWER_UP" in flags.split(","),
        }
    return links


def test_nics_match_ip_link() -> None:
    # Other engineers' tests create and delete interfaces at any moment: compare a snapshot
    # taken when `ip link` reads the same before and after the agent ran.
    for _ in range(5):
        before = _ip_links()
        report = dry_run()
        if _ip_links() == before:
            break
    else:
        pytest.fail("interfaces kept changing while measuring")
    got = {n["name"]: n for n in report["hardware"]["nics"]}
    assert set(got) == set(before)
    for name, link in before.items():
        if link["mac"]:
            assert got[name]["mac"] == link["mac"], name
        assert got[name]["carrier"] == link["lower_up"], name
    assert report["mac"] in {n["mac"] for n in got.values()}
