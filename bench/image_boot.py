#!/usr/bin/env python3
"""Boot the built OS image and the Python deploy ramdisk in QEMU and time them (run as root).

(a) ``image``: the ``debian12`` artifact (scripts/images/build.sh) decompressed, grown to 4 GiB,
    booted straight from its virtio disk with BIOS (``pc``) and then UEFI (``q35`` + OVMF), with a
    NoCloud seed (ISO 9660 labelled ``cidata``, made with pycdlib) that sets the hostname, a
    static address (network-config v2, MAC match, ``gateway4``), root's SSH key and a
    ``phone_home`` POST to a small HTTP server. Measures QEMU start → phone-home POST and checks
    the hostname it carries.
(b) ``ramdisk``: the ``deploy-ramdisk`` kernel + initrd booted with ``-kernel/-initrd/-append``,
    DHCP from a dnsmasq, ``regional_url`` pointing at the same HTTP server, which records the
    agent's first ``POST /api/v1/report``: QEMU start → first report, plus the tools /init found.

Everything on the network side lives in a namespace this script creates (``imgb<pid>``: a
bridge holding 10.99.0.1/24 and one tap); the HTTP server and dnsmasq run inside it, nothing
is routed out, and the namespace is deleted at the end. QEMU runs with ``-accel tcg`` (the
host's /dev/kvm is a paravirtual one BIOS guests triple-fault on), 1 vCPU, 1 GiB, one VM at a
time, each under a hard timeout; only processes this script started are killed (by PID).

    sudo python3 bench/image_boot.py                     # image (bios, uefi) + ramdisk
    sudo python3 bench/image_boot.py --part image --firmware uefi --json out.json

Needs: qemu-system-x86, ovmf, dnsmasq-base, lzop, pycdlib (pip), the packages of
.ci/apt/images.txt for the artifact builds.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "scripts" / "images" / "build.sh"
SERVER_IP, VM_IP, PORT = "10.99.0.1", "10.99.0.50", 8000
MAC = "52:54:00:99:00:50"
BRIDGE, TAP = "imgbr0", "imgtap0"
HOSTNAME = "lpmos-img-test"
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
# a throwaway public key (its private half was never kept): the seed must carry one
SSH_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMBh6wQZk0D4kU9yHfbk6Cq3zAO7p5n3x1c3qvlqvQ5n "
    "lpmos-image-boot-test"
)


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} image_boot: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# inside the namespace: the HTTP server (``--serve EVENTS_FILE``)
# ---------------------------------------------------------------------------------------------


def serve(events: Path) -> None:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n).decode("utf-8", "replace")
            ctype = self.headers.get("Content-Type", "")
            data: Any
            try:
                if "json" in ctype:
                    data = json.loads(body)
                else:
                    data = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
            except ValueError:
                data = body
            with lock, events.open("a") as fh:
                fh.write(json.dumps({"t": time.time(), "path": self.path, "data": data}) + "\n")
            if self.path.endswith("/device/isInInstallQueue"):
                answer: dict[str, Any] = {"result": False}
            else:
                answer = {"result": True}
            out = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: Any) -> None:
            pass

    ThreadingHTTPServer((SERVER_IP, PORT), Handler).serve_forever()


# ---------------------------------------------------------------------------------------------
# outer
# ---------------------------------------------------------------------------------------------


def sh(*cmd: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, **kw)


def build(name: str) -> Path:
    p = subprocess.run([str(BUILD), name], stdout=subprocess.PIPE, text=True, timeout=3600)
    if p.returncode:
        raise SystemExit(f"build of {name} failed")
    return Path(p.stdout.strip().splitlines()[-1])


def make_netns(ns: str) -> None:
    sh("ip", "netns", "add", ns)
    sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "-n", ns, "link", "add", BRIDGE, "type", "bridge", "forward_delay", "0",
       "stp_state", "0")  # fmt: skip
    sh("ip", "-n", ns, "addr", "add", f"{SERVER_IP}/24", "dev", BRIDGE)
    sh("ip", "-n", ns, "link", "set", BRIDGE, "up")
    sh("ip", "-n", ns, "tuntap", "add", "dev", TAP, "mode", "tap")
    sh("ip", "-n", ns, "link", "set", TAP, "master", BRIDGE)
    sh("ip", "-n", ns, "link", "set", TAP, "up")


def stop(p: subprocess.Popen[Any] | None) -> None:
    if p is None or p.poll() is not None:
        return
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(10)


def read_events(path: Path) -> list[dict[str, Any]]:
    out = []
    with contextlib.suppress(FileNotFoundError), path.open() as fh:
        for line in fh:
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out


def make_seed(path: Path, instance: str) -> None:
    import pycdlib

    meta = f"instance-id: {instance}\nlocal-hostname: {HOSTNAME}\n"
    user = f"""#cloud-config
hostname: {HOSTNAME}
fqdn: {HOSTNAME}.lpmos.test
disable_root: false
ssh_pwauth: false
users: []
ssh_authorized_keys:
  - "{SSH_KEY}"
ssh_genkeytypes: [ed25519, ecdsa]
locale: false
growpart:
  mode: auto
  devices: ['/']
phone_home:
  url: "http://{SERVER_IP}:{PORT}/phone-home/$INSTANCE_ID"
  post: [hostname, instance_id, fqdn, pub_key_ed25519]
  tries: 10
"""
    net = f"""version: 2
ethernets:
  nic0:
    match:
      macaddress: "{MAC}"
    addresses: [{VM_IP}/24]
    gateway4: {SERVER_IP}
    nameservers:
      addresses: [{SERVER_IP}]
"""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident="cidata")
    for name, text in (("meta-data", meta), ("user-data", user), ("network-config", net)):
        data = text.encode()
        iso_name = name.upper().replace("-", "_") + ".;1"
        iso.add_fp(io.BytesIO(data), len(data), f"/{iso_name}", rr_name=name,
                   joliet_path=f"/{name}")  # fmt: skip
    iso.write(str(path))
    iso.close()


def qemu(ns: str, args: list[str], serial: Path) -> tuple[subprocess.Popen[bytes], float]:
    cmd = ["ip", "netns", "exec", ns, "qemu-system-x86_64", "-accel", "tcg", "-smp", "1",
           "-m", "1024", "-nographic", "-nodefaults", "-no-reboot",
           "-chardev", "stdio,id=s0,signal=off", "-serial", "chardev:s0",
           "-netdev", f"tap,id=n0,ifname={TAP},script=no,downscript=no",
           "-device", f"virtio-net-pci,netdev=n0,mac={MAC},romfile=", *args]  # fmt: skip
    fh = serial.open("wb")
    t0 = time.time()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT)
    fh.close()
    return p, t0


def wait_event(events: Path, pred: Any, vm: subprocess.Popen[bytes], timeout: float
               ) -> dict[str, Any] | None:  # fmt: skip
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for e in read_events(events):
            if pred(e):
                return e
        if vm.poll() is not None:
            return None
        time.sleep(0.5)
    return None


def boot_image(ns: str, art: Path, firmware: str, work: Path, events: Path,
               timeout: float) -> dict[str, Any]:  # fmt: skip
    d = work / f"image-{firmware}"
    d.mkdir(parents=True, exist_ok=True)
    disk = d / "disk.raw"
    with disk.open("wb") as fh:
        sh("lzop", "-dc", str(art / "debian-12-amd64.raw.lzo"), stdout=fh)
    os.truncate(disk, 4 * 1024**3)
    instance = f"lpmos-{firmware}-{os.getpid()}"
    make_seed(d / "seed.iso", instance)
    args = ["-drive", f"file={disk},format=raw,if=none,id=d0",
            "-device", "virtio-blk-pci,drive=d0,bootindex=0",
            "-drive", f"file={d / 'seed.iso'},format=raw,if=virtio,readonly=on"]  # fmt: skip
    if firmware == "uefi":
        vars_copy = d / "OVMF_VARS.fd"
        shutil.copyfile(OVMF_VARS, vars_copy)
        args = ["-machine", "q35",
                "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
                "-drive", f"if=pflash,format=raw,file={vars_copy}", *args]  # fmt: skip
    else:
        args = ["-machine", "pc", *args]
    vm, t0 = qemu(ns, args, d / "serial.log")
    log(f"image {firmware}: QEMU pid {vm.pid}, waiting for phone_home (<= {timeout:.0f} s)")
    try:
        ev = wait_event(events, lambda e: e["path"].startswith(f"/phone-home/{instance}")
                        and e["t"] >= t0, vm, timeout)  # fmt: skip
    finally:
        stop(vm)
    r: dict[str, Any] = {"part": "image", "firmware": firmware, "serial_log": str(d / "serial.log")}
    if ev is None:
        r.update(
            ok=False,
            error="no phone-home POST"
            + (" (QEMU exited)" if vm.returncode not in (None, -15) else ""),
        )
        return r
    data = ev["data"] if isinstance(ev["data"], dict) else {}
    r.update(seconds_to_phone_home=round(ev["t"] - t0, 2), hostname=data.get("hostname"),
             instance_id=data.get("instance_id"), ok=data.get("hostname") == HOSTNAME,
             has_ed25519_key=bool(data.get("pub_key_ed25519")))  # fmt: skip
    disk.unlink()
    return r


def boot_ramdisk(ns: str, art: Path, work: Path, events: Path, timeout: float) -> dict[str, Any]:
    d = work / "ramdisk"
    d.mkdir(parents=True, exist_ok=True)
    blank = d / "blank.raw"
    with blank.open("wb") as fh:
        fh.truncate(1024**3)
    dns = subprocess.Popen(
        ["ip", "netns", "exec", ns, "dnsmasq", "--keep-in-foreground", "--port=0",
         f"--interface={BRIDGE}", "--bind-interfaces", "--no-ping", "--user=root",
         f"--pid-file={d / 'dnsmasq.pid'}", f"--dhcp-leasefile={d / 'dnsmasq.leases'}",
         "--dhcp-range=10.99.0.100,10.99.0.120,10m", f"--log-facility={d / 'dnsmasq.log'}"],
        stdin=subprocess.DEVNULL)  # fmt: skip
    bootif = "01-" + MAC.replace(":", "-")
    append = (f"console=ttyS0,115200 regional_url=http://{SERVER_IP}:{PORT} sn=TEST "
              f"BOOTIF={bootif}")  # fmt: skip
    args = ["-machine", "pc", "-kernel", str(art / "vmlinuz"), "-initrd", str(art / "initrd.img"),
            "-append", append, "-drive", f"file={blank},format=raw,if=virtio"]  # fmt: skip
    try:
        time.sleep(0.5)
        vm, t0 = qemu(ns, args, d / "serial.log")
        log(f"ramdisk: QEMU pid {vm.pid}, waiting for the agent's report (<= {timeout:.0f} s)")
        try:
            ev = wait_event(events, lambda e: e["path"] == "/api/v1/report" and e["t"] >= t0,
                            vm, timeout)  # fmt: skip
        finally:
            stop(vm)
    finally:
        stop(dns)
    serial = (d / "serial.log").read_text(errors="replace")
    tools = next((ln.split("tools:", 1)[1].split("(uptime")[0].split()
                  for ln in serial.splitlines() if "lpmos-init: tools:" in ln), [])  # fmt: skip
    r: dict[str, Any] = {"part": "ramdisk", "serial_log": str(d / "serial.log"),
                         "tools_found": [t for t in tools if not t.startswith("!")],
                         "tools_missing": [t[1:] for t in tools if t.startswith("!")]}  # fmt: skip
    for ln in serial.splitlines():
        if "lpmos-init: starting the agent" in ln and "uptime" in ln:
            r["guest_uptime_at_agent_start"] = float(ln.split("uptime ")[1].rstrip("s)\r "))
    if ev is None:
        r.update(ok=False, error="no report from the agent")
        return r
    hw = ev["data"].get("hardware", {}) if isinstance(ev["data"], dict) else {}
    r.update(ok=ev["data"].get("sn") == "TEST", seconds_to_first_report=round(ev["t"] - t0, 2),
             mac=ev["data"].get("mac"), disks=[x.get("name") for x in hw.get("disks", [])],
             nics=[x.get("name") for x in hw.get("nics", [])])  # fmt: skip
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=("image", "ramdisk", "all"), default="all")
    ap.add_argument("--firmware", default="bios,uefi", help="image boots: bios,uefi")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per VM")
    ap.add_argument("--workdir", help="disks, seeds, serial logs (default: a temporary dir)")
    ap.add_argument("--json", help="write the summary here")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(Path(args.serve))
        return 0
    if os.geteuid() != 0:
        print("needs root (network namespace, tap)", file=sys.stderr)
        return 2
    missing = [b for b in ("qemu-system-x86_64", "dnsmasq", "lzop", "ip") if not shutil.which(b)]
    if missing:
        print("missing: " + ", ".join(missing), file=sys.stderr)
        return 2
    parts = ("image", "ramdisk") if args.part == "all" else (args.part,)
    arts = {"image": build("debian12") if "image" in parts else None,
            "ramdisk": build("deploy-ramdisk") if "ramdisk" in parts else None}  # fmt: skip
    work = Path(args.workdir or tempfile.mkdtemp(prefix="image-boot-"))
    work.mkdir(parents=True, exist_ok=True)
    events = work / "events.jsonl"
    events.unlink(missing_ok=True)
    ns = f"imgb{os.getpid()}"
    make_netns(ns)
    server = None
    results: list[dict[str, Any]] = []
    try:
        server = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, __file__,
                                   "--serve", str(events)], stdin=subprocess.DEVNULL)  # fmt: skip
        time.sleep(1)
        if "image" in parts:
            assert arts["image"]
            for fw in [f for f in args.firmware.split(",") if f]:
                results.append(boot_image(ns, arts["image"], fw, work, events, args.timeout))
                log(json.dumps(results[-1]))
        if "ramdisk" in parts:
            assert arts["ramdisk"]
            results.append(boot_ramdisk(ns, arts["ramdisk"], work, events, args.timeout))
            log(json.dumps(results[-1]))
    finally:
        stop(server)
        out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
        for pid in out.split():  # only our children can live in our namespace
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", ns], check=False)
    summary = {"artifacts": {k: str(v) for k, v in arts.items() if v}, "results": results,
               "load_average": round(os.getloadavg()[0], 1), "workdir": str(work)}  # fmt: skip
    for r in results:
        secs = r.get("seconds_to_phone_home", r.get("seconds_to_first_report"))
        what = f"{r['part']} {r.get('firmware', '')}".strip()
        print(
            f"{what:<14} {'ok' if r.get('ok') else 'FAILED':<7} "
            f"{'' if secs is None else f'{secs:.1f} s'} {r.get('error', '')}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0 if results and all(r.get("ok") for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
