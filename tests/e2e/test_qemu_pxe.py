"""Real PXE boot, end to end (``bench/qemu_pxe.py``): a QEMU VM, powered on by the workflow
through the QEMU BMC, boots from our DHCP + TFTP + PXE configs and its sh agent completes the
task. Each firmware takes about a minute of software emulation (more on a loaded host), so this
runs only when asked: ``RC_QEMU=1 python -m pytest tests/e2e/test_qemu_pxe.py -m qemu``.
Needs root (network namespaces) and the packages in ``.ci/apt/qemu.txt``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import ENV, ROOT

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(os.environ.get("RC_QEMU") != "1", reason="set RC_QEMU=1 to run"),
]

EXPECTED_FILES = {
    "bios": ["pxelinux.0", "ldlinux.c32", "pxelinux.cfg/01-52-54-00-98-00-50"],
    "uefi": ["grubnetx64.efi", "grub/grub.cfg", "grub/grub.cfg-01-52-54-00-98-00-50"],
}


@pytest.mark.timeout(900)
@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_real_pxe_boot(firmware: str, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    p = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "qemu_pxe.py"), "--firmware", firmware,
         "--workdir", str(tmp_path / "work"), "--json", str(out), "--timeout", "400"],
        env={**ENV, **{k: v for k, v in os.environ.items() if k.startswith("RC_QEMU")}},
        capture_output=True, text=True, timeout=800,
    )  # fmt: skip
    print(p.stdout, p.stderr[-3000:])
    (r,) = json.loads(out.read_text())
    assert p.returncode == 0, r
    assert r["status"] == "completed"
    assert r["agent_ip"] == "10.98.0.50"  # the task's install IP, from our DHCP binding
    files = r["tftp_files"]
    for f in EXPECTED_FILES[firmware]:
        assert f in files, files
    assert "kernels/vmlinuz-lpmos-test" in files and "initrds/initrd-lpmos-test.img" in files
    assert r["results"]["hardware_config"] and r["results"]["os_install"]
    assert r["bmc_history"][:2] == ["bootdev:pxe", "power:on"]
    assert r["vm_starts"] == 1
    for phase in ("VM start -> DHCP lease (firmware)", "TFTP (loader, config, kernel, initrd)",
                  "kernel boot -> agent report", "total: approved -> completed"):  # fmt: skip
        assert phase in r["phases"], r["phases"]
