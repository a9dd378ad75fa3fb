"""Workflow throughput on the virtual rack: N servers, simulated device latency.

A real etcd and ``regional-client run`` install N servers of the virtual rack. The rack's own
loop (switch emulators, PXE firmware, agents) runs in this process, pinned to CPU 1; its IPMI
BMCs run in simulator processes of ``--bmcs-per-process`` each (pyghmi reads every socket of
its process per packet), answering each chassis action after ``--bmc-latency`` seconds; one SSH
switch emulator per 48 servers opens a session in ``--switch-login`` seconds; agents' operations
take ``--agent-seconds`` (hardware script plus the noop installer). The PXE firmware does real
DHCP (relay) and TFTP. Tasks name their switch port (as an inventory-driven control plane would).

The regional client is not pinned: its CPU is read from /proc/<pid>/stat, alone and with its
reaped children (the ``ipmitool`` runs), as seconds and average cores over the run; peak RSS is
VmHWM. Also printed: the time from approval to all settled, etcd key writes, how far the task
cache trailed etcd, warnings by action in both logs, and per-step p50/p95. Everything listens
on 127.0.0.1.

    python3 bench/workflow_bench.py --servers 200
    python3 bench/workflow_bench.py --servers 1000 --timeout 900
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.helpers.etcd import EtcdProcess

from regional_client.core.logs import setup_logging
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from regional_client.workflow.steps import STEP_NAMES
from regional_rack.demo import _tftp_root, demo_config, demo_secrets
from regional_rack.rack import VirtualRack, free_port


def proc_cpu(pid: int) -> tuple[float, float]:
    """(own, own + reaped children) CPU seconds: the children are the ``ipmitool`` runs."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    own = (int(f[11]) + int(f[12])) / tick
    return own, own + (int(f[13]) + int(f[14])) / tick


def peak_rss_mb(pid: int) -> float:
    m = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) / 1024 if m else 0.0


def loop_lag_over(port: int, threshold: float = 1.0) -> tuple[int, float]:
    """(timer checks the regional client's event loop ran more than ``threshold`` late, the
    worst bucket reached) from ``regional_client_event_loop_lag_seconds``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/metrics", timeout=30) as r:
        text = r.read().decode()
    buckets = [
        (float(le), float(n))
        for le, n in re.findall(r'event_loop_lag_seconds_bucket\{[^}]*le="([^"]+)"\} (\S+)', text)
        if le != "+Inf"
    ]
    total = re.search(r"event_loop_lag_seconds_count\{[^}]*\} (\S+)", text)
    count = float(total.group(1)) if total else 0.0
    under = max((n for le, n in buckets if le <= threshold), default=0.0)
    worst = min((le for le, n in buckets if n >= count), default=float("inf"))
    return int(count - under), worst


def cache_lag(port: int, kvs: list) -> int:
    """How far the regional client's task cache (health: ``cache_revision``) trails the newest
    task write in etcd (0: up to date, or ahead of that read)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=30) as r:
        cached = json.loads(r.read())["etcd"]["cache_revision"]
    newest = max((kv.mod_revision for kv in kvs), default=0)
    return max(0, newest - cached)


def key_writes(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/metrics", timeout=10) as r:
        m = re.search(rb"regional_client_etcd_key_writes\{[^}]*\} ([\d.e+]+)", r.read())
    return float(m.group(1)) if m else 0.0


def log_summary(path: Path) -> dict[str, int]:
    """Warning and error lines of the regional client's log, counted by action."""
    counts: collections.Counter[str] = collections.Counter()
    with contextlib.suppress(OSError), path.open(encoding="utf-8") as fh:
        for line in fh:
            with contextlib.suppress(ValueError):
                rec = json.loads(line)
                if rec.get("level") in ("warning", "error", "critical"):
                    counts[f"{rec['level']}:{rec.get('action') or rec.get('message')}"] += 1
    return dict(counts.most_common())


def secs(a: str | None, b: str | None) -> float | None:
    if not a or not b:
        return None
    p = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (p(b) - p(a)).total_seconds()


class MultiSwitchRack(VirtualRack):
    """The rack with one 48-port switch per 48 servers (a ToR per rack of servers)."""

    def __init__(self, *a, switch_login: float = 2.0, **kw) -> None:
        super().__init__(*a, **kw)
        self.switch_login = switch_login
        self.switches: list = []

    async def _start_switch(self) -> None:
        from regional_rack.switch_sim import SimSwitch

        for k in range(0, self.count, 48):
            sw = SimSwitch(
                vendor="cisco_ios",
                ports_count=48,
                password=self.switch_password,
                login_delay=self.switch_login,
            )
            for s in self.servers[k : k + 48]:
                s.port_name = sw.port_name(s.index - k + 1)
                sw.learn(s.mac, s.port_name)
                sw.mutate(s.port_name, mode="access", access_vlan=200)
            await sw.start()
            self.switches.append(sw)
        self.switch = self.switches[0]

    def switch_inventory(self) -> list[dict]:
        return [self.switch_entry(f"tor{n + 1}", sw, "cisco") for n, sw in enumerate(self.switches)]

    async def stop(self) -> None:
        for sw in self.switches[1:]:
            await sw.stop()
        await super().stop()


async def run(args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="wf-bench-"))
    setup_logging("rack", "warning", tmp / "rack.log", stderr=False)
    etcd = EtcdProcess(tmp / "etcd")
    etcd.start()
    rack = MultiSwitchRack(
        args.servers,
        bmc=args.bmc,
        workdir=tmp / "rack",
        switch_login=args.switch_login,
        agent_seconds=args.agent_seconds,
        bmc_latency=args.bmc_latency,
        ipmi_processes=max(1, args.servers // args.bmcs_per_process),
    )
    rc = None
    store = EtcdStore([etcd.endpoint])
    try:
        _tftp_root(tmp / "tftpboot")
        await rack.start()
        os.sched_setaffinity(0, {1})  # the rack's own loop; its IPMI processes run anywhere
        ports = {"api": free_port(), "dhcp": free_port(2), "tftp": free_port(2)}
        ports["relay"] = await rack.attach(
            ("127.0.0.1", ports["dhcp"]), ("127.0.0.1", ports["tftp"])
        )
        cfg = demo_config(tmp, rack, ports, demo_secrets(tmp))
        cfg["etcd"] = {"endpoints": [etcd.endpoint]}
        cfg["workflow"] = {
            "max_concurrent_installs": args.concurrency,
            "agent_timeout": "10m",
            # a firmware that gave up during a load stall is retried after 3 quiet minutes
            # (the rack fetches over TFTP from its leased addresses: attributed like DHCP)
            "boot_stall_timeout": "3m",
            "step_retries": 3,
            "step_timeout": "10m",
            "power_timeout": "5m",
        }
        cfg["tftp"]["max_clients"] = max(100, args.servers)  # every server may boot at once
        cfg["bmc"].update(max_concurrent=args.bmc_concurrency, timeout="30s")
        cfg["dhcp"]["relay_subnets"][0]["ip_range"] = {
            "start": "127.101.0.10",
            "end": "127.101.15.250",
        }
        cfg["logging"] = {"level": args.rc_log_level, "file": str(tmp / "rc.log"), "stderr": False}
        (tmp / "rc.yaml").write_text(yaml.safe_dump(cfg))
        env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT / "src")}
        rc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "regional_client",
                "run",
                "-c",
                str(tmp / "rc.yaml"),
            ],
            env=env,
        )
        for _ in range(300):
            try:
                await asyncio.to_thread(key_writes, ports["api"])  # answers once it is up
                break
            except (OSError, ValueError):
                await asyncio.sleep(0.1)
        await store.connect()
        keys = Keys("demo")
        cpu0, w0 = proc_cpu(rc.pid), key_writes(ports["api"])
        t0 = time.monotonic()
        index = {s.sn: s.index for s in rack.servers}
        for task in rack.tasks(name_ports=True):
            task["switch"]["name"] = f"tor{index[task['sn']] // 48 + 1}"
            task["operation_params"]["os_install"].update(steps=5, delay=args.agent_seconds / 5)
            task["hardware_scripts"] = []
            await store.put(keys.task(task["sn"]), task)
        done: dict = {}
        lags: list[int] = []
        slow_health = 0
        while time.monotonic() - t0 < args.timeout:
            kvs, _ = await store.get_prefix(keys.machines_prefix)
            done = {kv.value["sn"]: kv.value for kv in kvs if kv.valid}
            final = [t for t in done.values() if t["status"] in ("completed", "failed")]
            if len(final) == args.servers:
                break
            try:
                lag: int | str = await asyncio.to_thread(cache_lag, ports["api"], kvs)
                lags.append(int(lag))
            except (OSError, ValueError, KeyError):
                lag = "? (health did not answer within 30 s)"
                slow_health += 1
            print(
                f"  {time.monotonic() - t0:6.1f}s: {len(final)}/{args.servers} settled; "
                f"regional client's task cache {lag} revisions behind etcd",
                flush=True,
            )
            await asyncio.sleep(10)
        elapsed = time.monotonic() - t0
        cpu1 = proc_cpu(rc.pid)
        cpu, cpu_all = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
        steps: dict[str, list[float]] = {s: [] for s in STEP_NAMES}
        for t in done.values():
            for st in t.get("steps", []):
                v = secs(st.get("started_at"), st.get("finished_at"))
                if v is not None:
                    steps[st["name"]].append(v)
        return {
            "servers": args.servers,
            "seconds": round(elapsed, 1),
            "completed": sum(t["status"] == "completed" for t in done.values()),
            "failed": sum(t["status"] == "failed" for t in done.values()),
            "errors": sorted(
                {(t.get("error") or "")[:120] for t in done.values() if t["status"] == "failed"}
            )[:5],
            "rc_cpu_seconds": round(cpu, 1),
            "rc_avg_cores": round(cpu / elapsed, 2),
            "rc_with_ipmitool_cpu_seconds": round(cpu_all, 1),
            "rc_with_ipmitool_avg_cores": round(cpu_all / elapsed, 2),
            "rc_peak_rss_mb": round(peak_rss_mb(rc.pid), 1),
            "etcd_key_writes": int(key_writes(ports["api"]) - w0),
            "task_cache_max_revisions_behind": max(lags, default=0),
            "health_checks_unanswered_in_30s": slow_health,
            "event_loop_late_over_1s_and_worst_bucket": loop_lag_over(ports["api"]),
            "rc_log_warnings": log_summary(tmp / "rc.log"),
            "rack_log_warnings": log_summary(tmp / "rack.log"),
            "steps_p50_p95": {
                k: (
                    round(statistics.median(v), 2),
                    round(statistics.quantiles(v, n=20)[-1], 2) if len(v) > 1 else v[0],
                )
                for k, v in steps.items()
                if v
            },
        }
    finally:
        with contextlib.suppress(Exception):
            await store.close()
        if rc is not None:
            rc.terminate()
            try:  # in a thread: the rack (switches, agents) keeps answering meanwhile
                await asyncio.to_thread(rc.wait, 30)
            except subprocess.TimeoutExpired:
                print("regional client did not stop within 30 s of SIGTERM: killed", flush=True)
                rc.kill()
                rc.wait()
        try:
            await asyncio.wait_for(rack.stop(), 60)
        except TimeoutError:
            print("the virtual rack did not stop within 60 s", flush=True)
        finally:
            etcd.stop()
            if args.keep:
                print(f"work directory kept: {tmp}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", type=int, default=200)
    ap.add_argument("--switch-login", type=float, default=2.0)
    ap.add_argument(
        "--bmc",
        choices=["ipmi", "redfish"],
        default="ipmi",
        help="ipmi: pyghmi simulator processes (--bmcs-per-process each); "
        "redfish: one sushy-emulator --fake (power changes land 1-11 s later)",
    )
    ap.add_argument("--bmc-latency", type=float, default=0.5, help="IPMI: seconds per command")
    ap.add_argument(
        "--bmcs-per-process",
        type=int,
        default=100,
        help="IPMI: simulated BMCs per simulator process (pyghmi reads all sockets per wake-up)",
    )
    ap.add_argument("--agent-seconds", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=1000)
    ap.add_argument("--bmc-concurrency", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--rc-log-level", default="warning", help="the regional client's log level")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, etcd)")
    args = ap.parse_args()
    r = asyncio.run(run(args))
    print(yaml.safe_dump(r, sort_keys=False))
    print(
        f"{r['servers']} servers: {r['completed']} completed, {r['failed']} failed in "
        f"{r['seconds']} s; regional client {r['rc_cpu_seconds']} CPU s "
        f"({r['rc_avg_cores']} cores avg; {r['rc_with_ipmitool_avg_cores']} with its ipmitool "
        f"children), peak RSS {r['rc_peak_rss_mb']} MB, "
        f"{r['etcd_key_writes']} etcd key writes"
    )


if __name__ == "__main__":
    main()
