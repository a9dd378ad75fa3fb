"""A QEMU "BMC": IPMI power and boot-device commands start, stop and reset a QEMU VM.

This is what virtualbmc does for libvirt domains, for a bare ``qemu-system-x86_64`` process:
:class:`QemuPower` is a :class:`~regional_rack.ipmi_sim.PowerBackend` for the IPMI
simulator (:class:`~regional_rack.ipmi_sim.SimBmc`, pyghmi underneath), so real
``ipmitool`` — and the workflow's IPMI driver — power a real VM:

* ``power on``  → start QEMU; the NIC gets ``bootindex=1`` when the boot device pending for
  this boot (the IPMI boot flags, "once" or persistent) is ``pxe``, else the disk (if any) does;
* ``power off`` → SIGTERM, then SIGKILL, of the QEMU process this backend started (by PID);
* ``power soft`` → ACPI power button (QMP ``system_powerdown``); a ramdisk without ACPI
  handling ignores it, as a real OS without acpid would;
* ``power reset``/``cycle`` → QMP ``system_reset`` when the VM may reboot in place and boots
  from the same device; otherwise the process is restarted with the new boot device. With
  ``no_reboot`` (the default, ``-no-reboot``: a guest that reboots makes QEMU exit, so a
  finished install does not PXE-loop and burn CPU) every reset is a restart, because QEMU
  turns a monitor ``system_reset`` into an exit too;
* ``power status`` → whether the process is alive (a guest that powered itself off or
  rebooted under ``-no-reboot`` reads as off).

The monitor is QMP on a unix socket. We speak it with the tiny synchronous client below rather
than the ``qemu.qmp`` package: that one is asyncio-only, while BMC commands arrive on pyghmi's
thread, and we need three commands.

Standalone, one BMC on loopback (the password comes from a file or stdin, never argv)::

    python -m regional_rack.qemu_bmc --port 6230 --mac 52:54:00:12:34:56 \\
        --tap rcqtap0 --password-file pw.txt --serial-log vm.log [--firmware uefi]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from regional_client.core.errors import DriverError
from regional_client.core.logs import get_logger
from regional_rack.ipmi_sim import IpmiSimulator, SimBmc, SimBmcState

__all__ = ["QemuPower", "QmpClient", "VmSpec", "qemu_command", "serve"]

log = get_logger("qemu_bmc")

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")


@dataclass
class VmSpec:
    """What the VM looks like; :func:`qemu_command` turns it into a command line."""

    name: str = "vm0"
    mac: str = "52:54:00:12:34:56"
    tap: str | None = None
    """Host tap device (created beforehand, e.g. in a test's netns); None: no NIC at all."""
    memory_mb: int = 512
    nic_model: str = "virtio-net-pci"
    firmware: Literal["bios", "uefi"] = "bios"
    """``bios``: SeaBIOS and the NIC's iPXE ROM (Debian ``ipxe-qemu``). ``uefi``: OVMF with its
    own PXE client (the NIC's option ROM is disabled), machine ``q35``."""
    serial_log: Path | None = None
    """Where the guest's serial console (ttyS0) is written."""
    disk: Path | None = None
    """Optional raw disk image (boot device ``disk``)."""
    qemu_binary: str = "qemu-system-x86_64"
    accel: str = "tcg"
    """``tcg``: on this kind of host /dev/kvm is paravirtual and BIOS guests triple-fault."""
    cpus: int = 1
    no_reboot: bool = True
    workdir: Path | None = None
    """QMP socket, OVMF variables copy; default: a private temporary directory."""
    extra_args: list[str] = field(default_factory=list)


def qemu_command(spec: VmSpec, boot: str, qmp_socket: Path, ovmf_vars: Path | None) -> list[str]:
    """The QEMU command line for one power-on; ``boot`` is ``pxe`` or ``disk``."""
    cmd = [spec.qemu_binary, "-name", spec.name, "-accel", spec.accel, "-m", str(spec.memory_mb)]
    cmd += ["-smp", str(spec.cpus), "-nographic", "-nodefaults"]
    cmd += ["-chardev", "stdio,id=s0,signal=off", "-serial", "chardev:s0"]
    cmd += ["-qmp", f"unix:{qmp_socket},server=on,wait=off"]
    if spec.no_reboot:
        cmd.append("-no-reboot")
    if spec.firmware == "uefi":
        if ovmf_vars is None:
            raise ValueError("UEFI needs a copy of the OVMF variables")
        cmd += ["-machine", "q35"]
        cmd += ["-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}"]
        cmd += ["-drive", f"if=pflash,format=raw,file={ovmf_vars}"]
    else:
        cmd += ["-machine", "pc"]
    if spec.tap is not None:
        nic = f"{spec.nic_model},netdev=n0,mac={spec.mac}"
        if spec.firmware == "uefi":
            nic += ",romfile="
        if boot == "pxe":
            nic += ",bootindex=1"
        cmd += ["-netdev", f"tap,id=n0,ifname={spec.tap},script=no,downscript=no"]
        cmd += ["-device", nic]
    if spec.disk is not None:
        cmd += ["-drive", f"if=none,id=d0,format=raw,file={spec.disk}"]
        cmd += ["-device", "virtio-blk-pci,drive=d0" + (",bootindex=1" if boot != "pxe" else "")]
    return cmd + list(spec.extra_args)


class QmpClient:
    """A minimal synchronous QMP client: connect, negotiate, run one command, close."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout

    def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(self.timeout)
            s.connect(str(self.path))
            f = s.makefile("rwb")
            self._read(f, "QMP")  # greeting
            self._send(f, "qmp_capabilities", None)
            self._read(f, "return")
            self._send(f, command, arguments)
            return self._read(f, "return")

    @staticmethod
    def _send(f: Any, command: str, arguments: dict[str, Any] | None) -> None:
        msg: dict[str, Any] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        f.write(json.dumps(msg).encode() + b"\n")
        f.flush()

    @staticmethod
    def _read(f: Any, key: str) -> Any:
        while True:
            line = f.readline()
            if not line:
                raise DriverError("QMP connection closed")
            msg = json.loads(line)
            if "error" in msg:
                raise DriverError(f"QMP error: {msg['error'].get('desc', msg['error'])}")
            if key in msg:  # anything else is an asynchronous event
                return msg[key]


class QemuPower:
    """PowerBackend driving one QEMU process (see the module docstring for the mapping)."""

    def __init__(self, spec: VmSpec, start_timeout: float = 10.0) -> None:
        self.spec = spec
        self.start_timeout = start_timeout
        self._own_dir = spec.workdir is None
        self.workdir = spec.workdir or Path(tempfile.mkdtemp(prefix=f"qemu-bmc-{spec.name}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.qmp_socket = self.workdir / "qmp.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self.boot: str | None = None
        """Boot device of the running process (``pxe``/``disk``)."""
        self.starts = 0
        self.events: list[tuple[float, str]] = []
        """(time.time(), what) for every start/stop/reset: the bench's phase boundaries."""

    # -- PowerBackend --------------------------------------------------------------------------
    def is_on(self, state: SimBmcState) -> bool:
        return self.running()

    def act(self, state: SimBmcState, action: str) -> None:
        boot = "pxe" if state.boot_device == "pxe" else "disk"
        if action == "on":
            if not self.running():
                self.start(boot)
        elif action == "off":
            self.stop()
        elif action == "soft":
            if self.running():
                self._qmp("system_powerdown")
        elif action in ("reset", "cycle"):
            if action == "reset" and not self.spec.no_reboot and self.boot == boot:
                self._qmp("system_reset")
                self.events.append((time.time(), "reset"))
            else:
                self.stop()
                self.start(boot)

    # -- the process ---------------------------------------------------------------------------
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, boot: str) -> None:
        spec = self.spec
        vars_copy = None
        if spec.firmware == "uefi":
            vars_copy = self.workdir / "OVMF_VARS.fd"
            if not vars_copy.exists():
                shutil.copyfile(OVMF_VARS, vars_copy)
        with contextlib.suppress(FileNotFoundError):
            self.qmp_socket.unlink()
        cmd = qemu_command(spec, boot, self.qmp_socket, vars_copy)
        out = (
            open(spec.serial_log, "ab")  # noqa: SIM115 - handed to the child, closed below
            if spec.serial_log
            else open(os.devnull, "wb")  # noqa: SIM115
        )
        try:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
            )
        except OSError as e:
            raise DriverError(f"cannot start {spec.qemu_binary}: {e}") from e
        finally:
            out.close()
        self.boot = boot
        self.starts += 1
        self.events.append((time.time(), f"start:{boot}"))
        log.info("vm started", action="vm_start", vm=spec.name, pid=self.proc.pid, boot=boot)
        self._wait_for_monitor()

    def _wait_for_monitor(self) -> None:
        end = time.monotonic() + self.start_timeout
        while time.monotonic() < end:
            if not self.running():
                code = self.proc.returncode if self.proc else None
                raise DriverError(f"qemu exited at once with status {code} (see serial log)")
            if self.qmp_socket.exists():
                return
            time.sleep(0.02)
        raise DriverError("qemu did not open its monitor socket")

    def stop(self, timeout: float = 5.0) -> None:
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            self.events.append((time.time(), "stop"))
            log.info("vm stopped", action="vm_stop", vm=self.spec.name, pid=p.pid)
        self.proc = None
        self.boot = None

    def status(self) -> str | None:
        """QMP ``query-status`` (``running``, ``paused``, ...), or None when off."""
        if not self.running():
            return None
        return str(self._qmp("query-status").get("status"))

    def _qmp(self, command: str) -> Any:
        return QmpClient(self.qmp_socket).execute(command)

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def serve(
    spec: VmSpec,
    password: str,
    port: int = 0,
    username: str = "admin",
    address: str = "127.0.0.1",
) -> tuple[IpmiSimulator, SimBmc, QemuPower]:
    """One IPMI BMC for one VM, served in the background (``sim.stop()``, ``power.close()``)."""
    power = QemuPower(spec)
    sim = IpmiSimulator()
    bmc = sim.add(SimBmcState(f"bmc-{spec.name}", username, password), port, address, power)
    sim.start()
    return sim, bmc, power


def _read_password(path: str) -> str:
    if path == "-":
        return sys.stdin.readline().strip()
    with open(path, encoding="utf-8") as fh:
        return fh.read().strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="An IPMI BMC (on loopback) that powers a QEMU VM")
    ap.add_argument("--port", type=int, default=0, help="UDP port (0: any free one)")
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--username", default="admin")
    ap.add_argument("--password-file", required=True, help="file with the password; - = stdin")
    ap.add_argument("--name", default="vm0")
    ap.add_argument("--mac", default="52:54:00:12:34:56")
    ap.add_argument("--tap", help="tap device for the NIC (omit: no NIC)")
    ap.add_argument("--memory", type=int, default=512, help="MiB")
    ap.add_argument("--nic-model", default="virtio-net-pci")
    ap.add_argument("--firmware", choices=("bios", "uefi"), default="bios")
    ap.add_argument("--serial-log", type=Path)
    ap.add_argument("--disk", type=Path)
    ap.add_argument("--workdir", type=Path)
    args = ap.parse_args(argv)
    spec = VmSpec(
        name=args.name, mac=args.mac, tap=args.tap, memory_mb=args.memory,
        nic_model=args.nic_model, firmware=args.firmware, serial_log=args.serial_log,
        disk=args.disk, workdir=args.workdir,
    )  # fmt: skip
    sim, bmc, power = serve(spec, _read_password(args.password_file), args.port,
                            args.username, args.address)  # fmt: skip
    print(json.dumps({"name": spec.name, "port": bmc.port, "username": args.username}))
    print(json.dumps({"ready": True}), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    sim.stop()
    power.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
