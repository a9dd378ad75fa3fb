"""Real PXE boot, end to end (``bench/qemu_pxe.py``): a QEMU VM, powered on by the workflow
through the QEMU BMC, boots from our DHCP + TFTP + PXE configs and its sh agent completes the
task: BIOS (iPXE → pxelinux over TFTP), UEFI (OVMF → GRUB over TFTP), and BIOS with iPXE over
HTTP boot. Each takes 17-27 s of software emulation here (about 80 s for the module with the
artifact build cached), so it is part of the default run when its prerequisites exist: root
(network namespaces, tap devices), the packages in ``.ci/apt/qemu.txt`` and ``apt-get download``
for the kernel (first run only). ``RC_QEMU=0`` (or ``-m "not qemu"``) leaves it out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import ENV, ROOT

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(os.environ.get("RC_QEMU") == "0", reason="RC_QEMU=0"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(
        shutil.which("qemu-system-x86_64") is None, reason="needs .ci/apt/qemu.txt packages"
    ),
]

EXPECTED_FILES = {
    "bios": ["pxelinux.0", "ldlinux.c32", "pxelinux.cfg/01-52-54-00-98-00-50"],
    "uefi": ["grubnetx64.efi", "grub/grub.cfg", "grub/grub.cfg-01-52-54-00-98-00-50"],
    "bios-http": [],
}


@pytest.mark.timeout(900)
@pytest.mark.parametrize("firmware", ["bios", "uefi", "bios-http"])
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
    if firmware == "bios-http":
        assert files == []  # iPXE took its script, kernel and initrd over HTTP boot
    else:
        assert "kernels/vmlinuz-lpmos-test" in files and "initrds/initrd-lpmos-test.img" in files
    assert r["results"]["hardware_config"] and r["results"]["os_install"]
    assert r["bmc_history"][:2] == ["bootdev:pxe", "power:on"]
    assert r["vm_starts"] == 1
    assert "VM start -> DHCP lease (firmware)" in r["phases"], r["phases"]
    assert "total: approved -> completed" in r["phases"], r["phases"]
