#!/usr/bin/env python3
"""Real PXE boot, end to end: a QEMU VM installed by the workflow through the QEMU BMC.

Inside a network namespace this script creates (``rcq<pid>``: a bridge holding the server
address 10.98.0.1/24 and one tap for the VM; nothing leaves it), it runs a real regional client
(embedded etcd, DHCP on the bridge, TFTP, PXE config generator, HTTP API, BMC driver,
workflow) and one QEMU BMC (IPMI on the namespace's loopback, powering a QEMU VM). It puts one
approved task for the VM (MAC, install IP, BMC, operations ``hardware_config`` + ``os_install``)
and waits: the workflow sets boot device PXE and powers the VM on with ``ipmitool``; the VM's
firmware gets its address from our DHCP and loads over our TFTP

* ``bios``: the NIC's iPXE ROM → ``pxelinux.0`` → ``pxelinux.cfg/01-<mac>`` → kernel + initrd;
* ``uefi``: OVMF's own PXE → ``grubnetx64.efi`` → ``grub/grub.cfg`` → per-MAC config → kernel +
  initrd;
* ``bios-http``: the NIC's iPXE ROM → our DHCP hands it its per-MAC iPXE script URL → script,
  kernel and initrd over HTTP boot (no TFTP at all);
* ``bios-dnsmasq``: the peer — as ``bios``, but dnsmasq serves DHCP and TFTP (our DHCP and TFTP
  are off; the workflow, PXE generator, BMC and agent API are ours). ``--firmware compare`` runs
  ``bios`` and ``bios-dnsmasq`` back to back and prints the ratio of VM start → agent report;

the initrd (bench/qemu_artifacts.sh: Debian kernel, busybox-static, the sh agent) takes an
address with ``udhcpc`` and runs the agent, which reads ``regional_url`` and ``sn`` from
``/proc/cmdline``, gets its token in the answer to its first report, and drives the task to
``completed``.

Prints the duration of each phase and (``--json FILE``) writes them. Exit 0 when the task
completed. Needs root, qemu-system-x86 (software emulation, ``-accel tcg``), ipxe-qemu,
pxelinux, syslinux-common, busybox-static, ovmf, grub-efi-amd64-signed, etcd.

    sudo python bench/qemu_pxe.py --firmware bios   # uefi, bios-http; both = bios+uefi; all
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SERVER_IP = "10.98.0.1"
BOOT_PHASE = "VM start -> agent report (whole boot)"
VM_IP = "10.98.0.50"
MAC = "52:54:00:98:00:50"
SN = "QEMU0001"
BRIDGE, TAP = "rcqbr0", "rcqtap0"
PXELINUX = Path("/usr/lib/PXELINUX/pxelinux.0")
LDLINUX = Path("/usr/lib/syslinux/modules/bios/ldlinux.c32")
VARIANTS = ("bios", "uefi", "bios-http", "bios-dnsmasq")
GRUBNET = Path("/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed")


# ---------------------------------------------------------------------------------------------
# outer: namespace, artifacts, one inner run per firmware, cleanup
# ---------------------------------------------------------------------------------------------


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True)


def make_netns(ns: str) -> None:
    ip("netns", "add", ns)
    ip("-n", ns, "link", "set", "lo", "up")
    ip("-n", ns, "link", "add", BRIDGE, "type", "bridge", "forward_delay", "0", "stp_state", "0")
    ip("-n", ns, "addr", "add", f"{SERVER_IP}/24", "dev", BRIDGE)
    ip("-n", ns, "link", "set", BRIDGE, "up")
    ip("-n", ns, "tuntap", "add", "dev", TAP, "mode", "tap")
    ip("-n", ns, "link", "set", TAP, "master", BRIDGE)
    ip("-n", ns, "link", "set", TAP, "up")


def delete_netns(ns: str) -> None:
    """Kill what still runs in our namespace (only our children live there), then delete it."""
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
    for pid in out.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", ns], check=False)


def check_prereqs() -> list[str]:
    missing = [b for b in ("qemu-system-x86_64", "ipmitool", "etcd", "ip") if not shutil.which(b)]
    missing += [str(p) for p in (PXELINUX, LDLINUX, GRUBNET) if not p.exists()]
    if os.geteuid() != 0:
        missing.append("root (network namespaces, tap devices)")
    return missing


def run_one(firmware: str, cache: Path, workdir: Path, timeout: float) -> dict[str, Any]:
    ns = f"rcq{os.getpid()}{VARIANTS.index(firmware)}"
    make_netns(ns)
    try:
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        cmd = ["ip", "netns", "exec", ns, sys.executable, str(Path(__file__).resolve()),
               "--inner", "--firmware", firmware, "--cache", str(cache),
               "--workdir", str(workdir / firmware), "--timeout", str(timeout)]  # fmt: skip
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout + 60)
        if p.returncode:
            sys.stderr.write(f"inner run exited with {p.returncode}:\n{p.stderr[-3000:]}\n")
        out = workdir / firmware / "result.json"
        if out.exists():
            r = dict(json.loads(out.read_text()))
            r["load_average"] = round(os.getloadavg()[0], 1)
            return r
        return {"firmware": firmware, "status": "error", "error": p.stderr[-3000:]}
    finally:
        delete_netns(ns)


def outer(args: argparse.Namespace) -> int:
    missing = check_prereqs()
    if missing:
        print("missing: " + ", ".join(missing), file=sys.stderr)
        return 2
    cache = Path(args.cache)
    subprocess.run(["sh", str(REPO / "bench" / "qemu_artifacts.sh"), str(cache)], check=True)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="rcq-run-"))
    results = []
    chosen = {"both": ("bios", "uefi"), "all": VARIANTS, "compare": ("bios", "bios-dnsmasq")}.get(
        args.firmware, (args.firmware,)
    )
    for fw in chosen:
        r = run_one(fw, cache, workdir, args.timeout)
        results.append(r)
        print_result(r)
    boot = {r["firmware"]: r.get("phases", {}).get(BOOT_PHASE) for r in results}
    if boot.get("bios") and boot.get("bios-dnsmasq"):
        print(f"VM start -> agent report: ours {boot['bios']:.2f} s, dnsmasq "
              f"{boot['bios-dnsmasq']:.2f} s, ratio ours/dnsmasq "
              f"{boot['bios'] / boot['bios-dnsmasq']:.2f}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    print(f"work dir (serial logs, regional client log): {workdir}")
    return 0 if all(r.get("status") == "completed" for r in results) else 1


def print_result(r: dict[str, Any]) -> None:
    print(f"== {r.get('firmware')}: task {r.get('status')} {r.get('error') or ''}")
    for name, secs in (r.get("phases") or {}).items():
        print(f"  {name:<42} {secs:7.2f} s")
    for k in ("agent_ip", "tftp_files", "load_average"):
        if k in r:
            print(f"  {k}: {r[k]}")


# ---------------------------------------------------------------------------------------------
# inner: runs inside the namespace
# ---------------------------------------------------------------------------------------------


def tftp_tree(root: Path, cache: Path) -> None:
    for d in ("kernels", "initrds", "pxelinux.cfg", "grub"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PXELINUX, root / "pxelinux.0")
    shutil.copyfile(LDLINUX, root / "ldlinux.c32")
    shutil.copyfile(GRUBNET, root / "grubnetx64.efi")
    shutil.copyfile(cache / "vmlinuz", root / "kernels" / "vmlinuz-lpmos-test")
    shutil.copyfile(cache / "initrd.img", root / "initrds" / "initrd-lpmos-test.img")


def rc_config(work: Path, tftp: Path, firmware: str) -> dict[str, Any]:
    dhcp: dict[str, Any] = {
        "enabled": True,
        "interface": BRIDGE,
        "ip_range": {"start": "10.98.0.100", "end": "10.98.0.120"},
        "tftp_server": SERVER_IP,
        "lease_time": "10m",
    }
    if firmware == "bios-dnsmasq":
        dhcp["enabled"] = False  # dnsmasq serves DHCP and TFTP; tftp_server sets regional_url
    if firmware == "bios":
        # The NIC's iPXE ROM identifies as iPXE; hand it pxelinux.0 (over TFTP) instead of the
        # per-MAC iPXE script, so this run exercises pxelinux + our TFTP.
        dhcp["ipxe_script_url"] = "pxelinux.0"
    # bios-http: the default ipxe_script_url, {regional_url}/boot/ipxe/{mac}
    return {
        "idc": "rcq",
        "api_port": 8080,  # inside our own namespace: no collision possible
        "state_dir": str(work / "state"),
        "api": {"listen_addr": "0.0.0.0"},
        "dhcp": dhcp,
        "tftp": {
            "enabled": firmware != "bios-dnsmasq",
            "root_dir": str(tftp),
            "listen_addr": f"{SERVER_IP}:69",
        },
        "http_boot": {"enabled": True},
        "pxe": {
            "config_dir": str(tftp / "pxelinux.cfg"),
            "kernel_dir": str(tftp / "kernels"),
            "initrd_dir": str(tftp / "initrds"),
        },
        "switch": {"enabled": False},
        "bmc": {
            "enabled": True,
            "timeout": "10s",
            "retries": 1,
            "power_timeout": "30s",
            "poll_interval": "500ms",
        },
        "workflow": {"enabled": True, "agent_timeout": "300s", "power_timeout": "60s"},
        "logging": {"level": "info", "file": str(work / "rc.log"), "stderr": False},
    }


def task_doc(bmc_port: int, bmc_password: str) -> dict[str, Any]:
    return {
        "task_id": f"task-{SN}",
        "sn": SN,
        "mac": MAC,
        "status": "approved",
        "hostname": "qemu-vm",
        "network": {"ip": VM_IP, "netmask": "255.255.255.0"},
        "bmc": {
            "ip": "127.0.0.1",
            "port": bmc_port,
            "type": "ipmi",
            "username": "admin",
            "password": bmc_password,
        },
        "pxe": {
            "kernel_path": "kernels/vmlinuz-lpmos-test",
            "initrd_path": "initrds/initrd-lpmos-test.img",
            "kernel_params": "quiet",
        },
        "operations": ["hardware_config", "os_install"],
        "hardware_scripts": [
            {
                "name": "lsmod",
                "interpreter": "/bin/sh",
                "content": "cat /proc/cpuinfo | grep -c processor; lsmod",
                "timeout": 30,
            }
        ],
        "operation_params": {"os_install": {"installer": "noop"}},
    }


def start_dnsmasq(work: Path, tftp: Path) -> subprocess.Popen[bytes]:
    """The peer: DHCP (same static binding, no ping check) and TFTP from the same root."""
    cmd = ["dnsmasq", "--keep-in-foreground", "--port=0", f"--interface={BRIDGE}",
           "--bind-interfaces", "--user=root", "--no-ping",
           f"--pid-file={work / 'dnsmasq.pid'}", f"--dhcp-leasefile={work / 'dnsmasq.leases'}",
           "--dhcp-range=10.98.0.100,10.98.0.120,10m", f"--dhcp-host={MAC},{VM_IP}",
           "--dhcp-boot=pxelinux.0", "--enable-tftp", f"--tftp-root={tftp}", "--log-dhcp",
           f"--log-facility={work / 'dnsmasq.log'}"]  # fmt: skip
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    time.sleep(0.5)
    if p.poll() is not None:
        raise RuntimeError(f"dnsmasq exited with {p.returncode}")
    return p


def ts(iso: str | None) -> float | None:
    if not iso:
        return None
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def read_log(path: Path) -> list[dict[str, Any]]:
    out = []
    with contextlib.suppress(FileNotFoundError), path.open() as fh:
        for line in fh:
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out


def phases(task: dict[str, Any], events: list[tuple[float, str]], log: list[dict[str, Any]],
           t_approved: float) -> dict[str, Any]:  # fmt: skip
    """Phase boundaries from the VM's power events, the regional client's log and the task."""
    t_start = next((t for t, e in events if e.startswith("start")), None)
    leases = [ts(r["time"]) for r in log if r.get("action") == "lease_assigned"
              and str(r.get("mac", "")).lower() == MAC]  # fmt: skip
    sent = [r for r in log if r.get("action") == "tftp_sent"]
    tftp_first = min((ts(r["time"]) - r.get("seconds", 0) for r in sent), default=None)
    tftp_last = max((ts(r["time"]) for r in sent), default=None)
    reported = ts(task.get("agent", {}).get("reported_at"))
    ops_done = max((ts(v.get("finished_at")) or 0 for v in task.get("results", {}).values()),
                   default=None)  # fmt: skip
    completed = next((ts(h.get("at")) for h in reversed(task.get("history", []))
                      if h.get("to") == "completed"), None)  # fmt: skip
    first_lease = leases[0] if leases else None
    marks = [
        ("approved -> VM started (power on)", t_approved, t_start),
        ("VM start -> DHCP lease (firmware)", t_start, leases[0] if leases else None),
        ("DHCP lease -> first TFTP request", leases[0] if leases else None, tftp_first),
        ("TFTP (loader, config, kernel, initrd)", tftp_first, tftp_last),
        ("kernel boot -> agent report", tftp_last, reported),
        ("DHCP lease -> agent report (HTTP boot)", None if sent else first_lease, reported),
        ("operations (hw config + os_install)", reported, ops_done),
        ("cleanup -> completed", ops_done, completed),
        (BOOT_PHASE, t_start, reported),
        ("total: approved -> completed", t_approved, completed),
    ]
    return {name: round(b - a, 2) for name, a, b in marks if a is not None and b is not None}


async def inner(args: argparse.Namespace) -> dict[str, Any]:
    from regional_client.config import config_from_dict
    from regional_client.daemon.server import RegionalClient
    from regional_rack.qemu_bmc import VmSpec, serve

    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    tftp = work / "tftp"
    tftp_tree(tftp, Path(args.cache))
    cfg = config_from_dict(rc_config(work, tftp, args.firmware), env={})
    rc = RegionalClient(cfg)
    await rc.start()
    peer = start_dnsmasq(work, tftp) if args.firmware == "bios-dnsmasq" else None
    password = secrets.token_urlsafe(12)
    firmware = "uefi" if args.firmware == "uefi" else "bios"
    spec = VmSpec(name=f"vm-{args.firmware}", mac=MAC, tap=TAP, firmware=firmware,
                  serial_log=work / "serial.log", workdir=work / "vm")  # fmt: skip
    sim, bmc, power = serve(spec, password)
    result: dict[str, Any] = {"firmware": args.firmware, "status": "timeout"}
    try:
        rt = rc.core
        t_approved = time.time()
        await rt.store.put(rt.keys.task(SN), task_doc(bmc.port, password))
        end = time.monotonic() + args.timeout
        task: dict[str, Any] = {}
        while time.monotonic() < end:
            kv = await rt.store.get(rt.keys.task(SN))
            task = kv.value if kv else {}
            if task.get("status") in ("completed", "failed"):
                break
            await asyncio.sleep(0.5)
        log = read_log(work / "rc.log")
        result.update(
            status=task.get("status", "missing"),
            error=(task.get("progress") or {}).get("message") if task.get("status") != "completed"
            else None,
            phases=phases(task, power.events, log, t_approved),
            agent_ip=(task.get("agent") or {}).get("ip"),
            tftp_files=[r.get("file") for r in log if r.get("action") == "tftp_sent"],
            results={k: v.get("message") for k, v in (task.get("results") or {}).items()},
            bmc_history=bmc.state.history,
            vm_starts=power.starts,
        )  # fmt: skip
        # written before the cleanup, so a slow or failing shutdown cannot lose the result
        (work / "result.json").write_text(json.dumps(result))
    finally:
        power.close()
        sim.stop()
        if peer is not None:
            peer.terminate()
            peer.wait(10)
        await rc.stop()
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--firmware", choices=(*VARIANTS, "both", "all", "compare"), default="bios")
    ap.add_argument("--cache", default=os.environ.get("RC_QEMU_CACHE", "/tmp/rcq-cache"),
                    help="kernel/initrd cache (built by bench/qemu_artifacts.sh)")  # fmt: skip
    ap.add_argument("--workdir", help="logs and TFTP root (default: a new temporary directory)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per VM install")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        asyncio.run(inner(args))
        return 0
    return outer(args)


if __name__ == "__main__":
    raise SystemExit(main())
