"""``regional-client demo``: the whole product on one machine, no hardware, no root.

Starts an embedded etcd, a regional client (DHCP on an unprivileged loopback port served through
the relay path, TFTP, HTTP boot, the agent and admin APIs, switch and BMC automation) and a
virtual rack of N servers (simulated BMCs, a simulated switch, PXE firmware and the reference
agent). It then creates and approves one install task per server, as a control plane would,
shows live progress, prints a per-step timing summary, and exits 0 when every server is
installed (non-zero, with the failure shown, otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from regional_client.config.secretbox import (
    DEFAULT_KEY_NAME,
    SecretBox,
    generate_key,
    write_key_file,
)
from regional_client.config.secrets import SecretsConfig
from regional_client.model import FINAL, Status, Task
from regional_client.workflow.steps import STEP_NAMES

if TYPE_CHECKING:
    from regional_rack.rack import VirtualRack


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the product against a virtual rack (no hardware)")
    p.add_argument("--servers", type=int, default=8, help="virtual servers (default 8)")
    p.add_argument("--bmc", choices=["ipmi", "redfish"], default="ipmi")
    p.add_argument("--vendor", choices=["cisco", "huawei", "h3c", "arista"], default="cisco")
    p.add_argument("--timeout", type=float, default=300, help="give up after N seconds")
    p.add_argument("--workdir", help="keep state, logs and TFTP root here (default: temporary)")
    p.add_argument("--json", action="store_true", help="print the final summary as JSON only")
    p.set_defaults(func=_demo)


def _tftp_root(root: Path) -> None:
    """A TFTP root as an operator would lay it out (real pxelinux.0 when Debian's is there)."""
    (root / "kernels").mkdir(parents=True, exist_ok=True)
    (root / "initrds").mkdir(parents=True, exist_ok=True)
    real = Path("/usr/lib/PXELINUX/pxelinux.0")
    if real.exists():
        shutil.copy(real, root / "pxelinux.0")
    else:
        (root / "pxelinux.0").write_bytes(b"virtual-rack boot loader\n" * 64)
    (root / "kernels/vmlinuz-debian-12").write_bytes(b"\x7fvirtual kernel\n" * 4096)
    (root / "initrds/initrd-debian-12.img").write_bytes(b"virtual initrd\n" * 8192)


def demo_secrets(work: Path) -> SecretBox:
    """A secrets key in the state dir (mode 0600), as an operator sets one up: every BMC and
    switch password of the demo is stored encrypted (``enc:``), in etcd and in the config."""
    state = work / "state"
    state.mkdir(parents=True, exist_ok=True)
    path = state / DEFAULT_KEY_NAME
    if not path.exists():
        write_key_file(path, generate_key())
    return SecretBox.from_config(SecretsConfig(key_file=path))


def demo_config(
    work: Path, rack: VirtualRack, ports: dict[str, int], box: SecretBox
) -> dict[str, Any]:
    root = work / "tftpboot"
    inventory = rack.switch_inventory()
    for sw in inventory:
        sw["password"] = box.encrypt(sw["password"])
    return {
        "idc": "demo",
        "api_port": ports["api"],
        "state_dir": str(work / "state"),
        "api": {"listen_addr": "127.0.0.1", "public_url": f"http://127.0.0.1:{ports['api']}",
                "admin": {"port": 0}},
        "dhcp": {
            "enabled": True,
            "interface": None,
            "listen_addr": "127.0.0.1",
            "port": ports["dhcp"],
            "relay_reply_port": ports["relay"],
            "server_id": "127.0.0.1",
            "tftp_server": "127.0.0.1",
            "relay_subnets": [
                {
                    "subnet": "127.0.0.0/8",
                    "gateway": "127.0.0.1",
                    "ip_range": {"start": "127.100.200.10", "end": "127.100.200.250"},
                }
            ],
            "lease_time": "10m",
        },
        "tftp": {"root_dir": str(root), "listen_addr": f"127.0.0.1:{ports['tftp']}"},
        "pxe": {
            "config_dir": str(root / "pxelinux.cfg"),
            "kernel_dir": str(root / "kernels"),
            "initrd_dir": str(root / "initrds"),
            "default_kernel_params": "console=ttyS0,115200n8 ip=dhcp",
        },
        "switch": {"enabled": True, "inventory": inventory, "batch_window": "200ms"},
        "secrets": {"key_file": str(work / "state" / DEFAULT_KEY_NAME),
                    "clear_passwords": "refuse"},
        "bmc": {
            "enabled": True,
            "protocol": rack.bmc_kind,
            "timeout": "20s",
            "retries": 2,
            "power_timeout": "60s",
            "poll_interval": "500ms",
            # HTTPS, verified against the rack emulator's own certificate (pinned)
            "redfish": {"ca_bundle": str(rack.redfish_cert)} if rack.redfish_cert else {},
        },
        "workflow": {"agent_timeout": "90s", "step_retries": 2, "retry_backoff": "500ms"},
        "logging": {"level": "info", "file": str(work / "regional-client.log"), "stderr": False},
    }


def _stage(t: Task) -> str:
    if t.status in FINAL or t.status == Status.APPROVED:
        return t.status.value
    running = [s.name for s in t.steps if s.status == "running"]
    return running[0] if running else t.status.value


def progress_table(tasks: dict[str, Task], started: float) -> Table:
    table = Table(title=f"regional-client demo — {time.monotonic() - started:5.1f}s")
    for col in ("server", "stage", "progress", "message"):
        table.add_column(col, no_wrap=col != "message")
    colors = {"completed": "green", "failed": "red", "approved": "yellow"}
    for sn in sorted(tasks):
        t = tasks[sn]
        stage = _stage(t)
        pct = t.progress.percent
        bar = "█" * round(pct / 5) + "·" * (20 - round(pct / 5))
        msg = t.error or t.progress.message
        table.add_row(
            sn, f"[{colors.get(stage, 'cyan')}]{stage}[/]", f"{bar} {pct:3.0f}%", msg[:70]
        )
    return table


def _secs(a: str | None, b: str | None) -> float | None:
    if not a or not b:
        return None
    fmt = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (fmt(b) - fmt(a)).total_seconds()


def summary(tasks: dict[str, Task]) -> list[dict[str, Any]]:
    rows = []
    for sn in sorted(tasks):
        t = tasks[sn]
        row: dict[str, Any] = {"sn": sn, "status": t.status.value, "error": t.error}
        for name in STEP_NAMES:
            st = t.step(name)
            row[name] = None if st is None else _secs(st.started_at, st.finished_at)
        claimed = t.claimed_at
        row["total"] = _secs(claimed, t.updated_at) if t.status in FINAL else None
        rows.append(row)
    return rows


def summary_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="time per step (seconds)")
    for col in ("server", "status", *STEP_NAMES, "total"):
        table.add_column(col, justify="right" if col not in ("server", "status") else "left")
    for r in rows:
        cells = [f"{r[s]:.1f}" if isinstance(r[s], float) else "-" for s in (*STEP_NAMES, "total")]
        table.add_row(r["sn"], r["status"], *cells)
    return table


async def run_demo(args: argparse.Namespace) -> int:
    from regional_client.config import config_from_dict
    from regional_client.daemon.server import RegionalClient
    from regional_rack.rack import VirtualRack, free_port

    con = Console(stderr=args.json)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="rc-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    _tftp_root(work / "tftpboot")
    rack = VirtualRack(args.servers, bmc=args.bmc, vendor=args.vendor, workdir=work / "rack")
    rc: RegionalClient | None = None
    started = time.monotonic()
    try:
        await rack.start()
        ports = {"api": free_port(), "dhcp": free_port(2), "tftp": free_port(2)}
        ports["relay"] = await rack.attach(
            ("127.0.0.1", ports["dhcp"]), ("127.0.0.1", ports["tftp"])
        )
        box = demo_secrets(work)
        config = config_from_dict(demo_config(work, rack, ports, box), env={})
        rc = RegionalClient(config)
        rt = (await rc.start()).core
        con.print(f"regional client up: agent API http://127.0.0.1:{rc.api_port}/api/v1, "
                  f"admin API http://127.0.0.1:{rc.admin_port}/api/v1 "
                  f"(etcd {rc.etcd.endpoint if rc.etcd else '-'}); rack: {args.servers} servers, "
                  f"{args.bmc.upper()} BMCs, {args.vendor} switch; work dir {work}")  # fmt: skip
        for task in rack.tasks():
            task["created_at"] = task["updated_at"] = datetime.now().astimezone().isoformat()
            task["bmc"]["password"] = box.encrypt(task["bmc"]["password"])
            await rt.store.put(rt.keys.task(task["sn"]), task)
        sns = {s.sn for s in rack.servers}

        def view() -> dict[str, Task]:
            return {sn: t for sn in sns if (t := rt.cache.get_task(sn)) is not None}

        deadline = time.monotonic() + args.timeout
        with Live(progress_table(view(), started), console=con, refresh_per_second=4,
                  transient=args.json) as live:  # fmt: skip
            while time.monotonic() < deadline:
                tasks = view()
                live.update(progress_table(tasks, started))
                if len(tasks) == len(sns) and all(t.status in FINAL for t in tasks.values()):
                    break
                await asyncio.sleep(0.25)
        tasks = view()
        rows = summary(tasks)
        ok = len(tasks) == len(sns) and all(t.status == Status.COMPLETED for t in tasks.values())
        elapsed = time.monotonic() - started
        if args.json:
            print(json.dumps({"ok": ok, "seconds": round(elapsed, 1), "servers": rows}, indent=2))
        else:
            con.print(summary_table(rows))
            for t in tasks.values():
                if t.status != Status.COMPLETED:
                    con.print(f"[red]{t.sn}: {t.status.value}: {t.error or t.progress.message}[/]")
            verdict = (
                "[green]all servers installed[/]" if ok else "[red]not all servers installed[/]"
            )
            con.print(f"{verdict} in {elapsed:.1f}s; log: {work / 'regional-client.log'}")
        return 0 if ok else 1
    finally:
        if rc is not None:
            await rc.stop()
        await rack.stop()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


def _demo(args: argparse.Namespace) -> int:
    if args.servers < 1 or args.servers > 200:
        print("regional-client: error: --servers must be 1..200", file=sys.stderr)
        return 2
    return asyncio.run(run_demo(args))
