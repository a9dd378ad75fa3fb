"""JSON log lines with the seed's fields, secret redaction, rotation by size, count and age."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from regional_client.core.logs import get_logger, set_mac_resolver, setup_logging


def test_fields_redaction_and_rotation(tmp_path: Path) -> None:
    f = tmp_path / "rc.log"
    old = tmp_path / "rc.log.9"
    old.write_text("ancient\n")
    os.utime(old, (time.time() - 40 * 86400,) * 2)
    setup_logging("dc9", "info", f, max_size_mb=1, max_backups=2, max_age_days=30, stderr=False)
    assert not old.exists()  # older than max_age: removed at start
    log = get_logger("dhcp")
    log.info("DHCP lease assigned to server", action="lease_assigned", mac="aa:bb:cc:dd:ee:ff",
             ip="10.0.0.9", password="hunter2", agent_token="tok")  # fmt: skip
    first = json.loads(f.read_text().splitlines()[0])
    assert list(first)[:8] == ["time", "level", "idc", "module", "action", "mac", "ip", "message"]
    assert first["idc"] == "dc9" and first["module"] == "dhcp" and first["ip"] == "10.0.0.9"
    assert first["password"] == "***" and first["agent_token"] == "***"
    filler = "x" * 1000
    for i in range(3000):  # ~3 MB: rotates at 1 MB, keeps 2 backups
        log.info(filler, action="fill", n=i)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["rc.log", "rc.log.1", "rc.log.2"], names
    assert all(p.stat().st_size <= 1024 * 1024 + 2000 for p in tmp_path.iterdir())
    setup_logging("dc9", "info", None, stderr=True)  # detach the file handler


def test_serial_brings_its_mac(tmp_path: Path) -> None:
    f = tmp_path / "rc.log"
    setup_logging("dc9", "info", f, stderr=False)
    known = {"SN1": "aa:bb:cc:00:00:01"}

    def resolve(sn: str) -> str | None:
        if sn == "BOOM":
            raise RuntimeError("lookup failed")
        return known.get(sn)

    set_mac_resolver(resolve)
    try:
        log = get_logger("workflow")
        log.info("step failed", sn="SN1")
        log.info("given mac wins", sn="SN1", mac="aa:bb:cc:00:00:99")
        log.info("unknown serial", sn="SN2")
        log.info("lookup raising must not lose the line", sn="BOOM")
    finally:
        set_mac_resolver(None)
        setup_logging("dc9", "info", None, stderr=True)
    lines = [json.loads(x) for x in f.read_text().splitlines()]
    assert [r["mac"] for r in lines] == ["aa:bb:cc:00:00:01", "aa:bb:cc:00:00:99", "", ""]
