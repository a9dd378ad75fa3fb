"""The QEMU BMC with real peers: ``ipmitool`` powers a real ``qemu-system-x86_64`` process.

These VMs have no NIC (nothing to send anywhere) and boot SeaBIOS into "no bootable device",
which takes a second under TCG; the whole module runs in a few seconds, so it is part of the
default run. The full network boot is in ``test_qemu_pxe.py`` (``RC_QEMU=1``).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from regional_client.core.errors import DriverError
from regional_rack.qemu_bmc import QemuPower, QmpClient, VmSpec, qemu_command, serve
from tests.helpers.cli import ENV

PASSWORD = "qemu-bmc-pw-1"

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-system-x86_64") is None or shutil.which("ipmitool") is None,
    reason="needs qemu-system-x86 and ipmitool (.ci/apt/qemu.txt)",
)


def wait_for(pred: Callable[[], object], timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


@pytest.fixture
def pwfile(tmp_path: Path) -> Path:
    p = tmp_path / "pw"
    p.write_text(PASSWORD + "\n")
    p.chmod(0o600)
    return p


def ipmi(port: int, pwfile: Path, *args: str) -> str:
    argv = ["ipmitool", "-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", str(port),
            "-U", "admin", "-f", str(pwfile), "-N", "2", "-R", "2", *args]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture
def vm(tmp_path: Path) -> Iterator[tuple[int, QemuPower]]:
    spec = VmSpec(name="t", memory_mb=64, serial_log=tmp_path / "serial.log",
                  workdir=tmp_path / "vm")  # fmt: skip
    sim, bmc, power = serve(spec, PASSWORD)
    try:
        yield bmc.port, power
    finally:
        sim.stop()
        power.close()


def test_command_line_follows_boot_device_and_firmware(tmp_path: Path) -> None:
    spec = VmSpec(mac="52:54:00:00:00:01", tap="tap9", disk=tmp_path / "d.img")
    pxe = qemu_command(spec, "pxe", tmp_path / "q.sock", None)
    assert "-accel" in pxe and pxe[pxe.index("-accel") + 1] == "tcg"
    nic = pxe[pxe.index("-device") + 1]
    assert nic == "virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01,bootindex=1"
    assert "tap,id=n0,ifname=tap9,script=no,downscript=no" in pxe
    assert "virtio-blk-pci,drive=d0" in pxe  # the disk is not first
    disk = qemu_command(spec, "disk", tmp_path / "q.sock", None)
    assert "virtio-blk-pci,drive=d0,bootindex=1" in disk
    assert not any("bootindex" in a for a in disk if a.startswith("virtio-net"))
    spec.firmware = "uefi"
    uefi = qemu_command(spec, "pxe", tmp_path / "q.sock", tmp_path / "vars.fd")
    assert "q35" in uefi
    assert any(a.endswith(",romfile=,bootindex=1") for a in uefi)  # OVMF's own PXE, not iPXE
    assert f"if=pflash,format=raw,file={tmp_path / 'vars.fd'}" in uefi
    with pytest.raises(ValueError):
        qemu_command(spec, "pxe", tmp_path / "q.sock", None)


def test_ipmitool_powers_the_vm(vm: tuple[int, QemuPower], pwfile: Path) -> None:
    port, power = vm
    assert ipmi(port, pwfile, "power", "status") == "Chassis Power is off"
    ipmi(port, pwfile, "chassis", "bootdev", "pxe")
    ipmi(port, pwfile, "power", "on")
    assert power.running() and power.boot == "pxe"
    assert ipmi(port, pwfile, "power", "status") == "Chassis Power is on"
    assert power.status() == "running"
    first = power.proc.pid if power.proc else None
    # the "once" PXE override was consumed by that boot: the reset boots the disk
    ipmi(port, pwfile, "power", "reset")
    assert power.running() and power.boot == "disk"
    assert power.proc is not None and power.proc.pid != first  # -no-reboot: a restart
    ipmi(port, pwfile, "power", "off")
    assert not power.running()
    assert ipmi(port, pwfile, "power", "status") == "Chassis Power is off"
    assert [e for _, e in power.events] == ["start:pxe", "stop", "start:disk", "stop"]


def test_reset_in_place_through_qmp(tmp_path: Path, pwfile: Path) -> None:
    log = tmp_path / "serial.log"
    spec = VmSpec(name="r", memory_mb=64, serial_log=log, no_reboot=False,
                  workdir=tmp_path / "vm")  # fmt: skip
    sim, bmc, power = serve(spec, PASSWORD)
    try:
        ipmi(bmc.port, pwfile, "power", "on")
        pid = power.proc.pid if power.proc else None
        wait_for(lambda: log.read_bytes().count(b"SeaBIOS") >= 1)
        ipmi(bmc.port, pwfile, "power", "reset")
        assert power.proc is not None and power.proc.pid == pid  # same process, rebooted
        wait_for(lambda: log.read_bytes().count(b"SeaBIOS") >= 2)
        assert bmc.state.resets == 1
    finally:
        sim.stop()
        power.close()


def test_a_vm_that_exits_reads_as_off(vm: tuple[int, QemuPower], pwfile: Path) -> None:
    port, power = vm
    ipmi(port, pwfile, "power", "on")
    with contextlib.suppress(DriverError, OSError):  # QEMU may close before it answers
        QmpClient(power.qmp_socket, timeout=30).execute("quit")
    wait_for(lambda: not power.running())
    assert ipmi(port, pwfile, "power", "status") == "Chassis Power is off"
    # power on again works from there
    ipmi(port, pwfile, "power", "on")
    assert power.running()


def test_standalone_password_from_stdin(tmp_path: Path, pwfile: Path) -> None:
    argv = [sys.executable, "-m", "regional_rack.qemu_bmc", "--password-file", "-",
            "--memory", "64", "--workdir", str(tmp_path / "vm")]  # fmt: skip
    p = subprocess.Popen(argv, env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdin is not None and p.stdout is not None
        p.stdin.write(PASSWORD + "\n")
        p.stdin.flush()
        port = json.loads(p.stdout.readline())["port"]
        assert json.loads(p.stdout.readline()) == {"ready": True}
        assert PASSWORD not in " ".join(argv)
        ipmi(port, pwfile, "power", "on")
        assert ipmi(port, pwfile, "power", "status") == "Chassis Power is on"
        p.send_signal(signal.SIGTERM)
        assert p.wait(20) == 0
        with pytest.raises(OSError):  # its VM was stopped with it
            QmpClient(tmp_path / "vm" / "qmp.sock", timeout=2).execute("query-status")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
