"""``regional-client demo``: the whole product against the virtual rack, as a user runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import ENV


def _demo(tmp_path: Path, *args: str) -> dict:
    r = subprocess.run(
        [sys.executable, "-m", "regional_client", "demo", "--json", "--timeout", "240",
         "--workdir", str(tmp_path / "demo"), *args],
        capture_output=True, text=True, env=ENV, timeout=300,
    )  # fmt: skip
    assert r.returncode in (0, 1), r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert r.returncode == (0 if out["ok"] else 1)
    return out


def _failure_report(tmp_path: Path, out: dict) -> dict:
    """What a failed demo run leaves to go on: per-server errors and the regional client's
    warnings and errors (the work dir is gone once pytest prunes its temp dirs)."""
    log = tmp_path / "demo" / "regional-client.log"
    lines = log.read_text().splitlines() if log.exists() else []
    bad = [ln for ln in lines if '"level": "warning"' in ln or '"level": "error"' in ln]
    return {
        "servers": [(s["sn"], s["status"], s["error"]) for s in out["servers"]],
        "log": bad[-60:],
    }


@pytest.mark.parametrize(
    ("bmc", "vendor"),
    [("ipmi", "cisco"), ("redfish", "huawei"), ("ipmi", "h3c"), ("ipmi", "arista")],
)
def test_demo_eight_servers(tmp_path: Path, bmc: str, vendor: str) -> None:
    out = _demo(tmp_path, "--servers", "8", "--bmc", bmc, "--vendor", vendor)
    assert out["ok"], json.dumps(_failure_report(tmp_path, out), indent=1)
    assert len(out["servers"]) == 8
    for s in out["servers"]:
        assert s["status"] == "completed"
        assert all(isinstance(s[step], float) for step in ("switch", "pxe", "dhcp", "power",
                                                            "agent", "cleanup"))  # fmt: skip
    log = (tmp_path / "demo" / "regional-client.log").read_text()
    # Every server got its address from our DHCP and its boot config over our TFTP.
    assert log.count('"action": "lease_assigned"') >= 8
    for n in range(1, 9):
        assert f'"file": "pxelinux.cfg/01-52-54-00-ab-00-{n:02x}"' in log, n
    # No clear password anywhere in etcd's files (database and write-ahead log): the rack's
    # BMC and switch passwords ("rack-" + 8 hex digits) were stored encrypted only.
    etcd_dir = tmp_path / "demo" / "state" / "etcd"
    files = [p for p in etcd_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".wal" for p in files) and any(p.name == "db" for p in files)
    for p in files:
        assert not re.search(rb"rack-[0-9a-f]{8}", p.read_bytes()), p
    assert b"enc:" in b"".join(p.read_bytes() for p in files)


def test_demo_rejects_bad_arguments(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "regional_client", "demo", "--servers", "0"],
                       capture_output=True, text=True, env=ENV, timeout=60)  # fmt: skip
    assert r.returncode == 2 and "--servers must be" in r.stderr
