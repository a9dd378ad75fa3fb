"""DHCP load benchmark: ISC perfdhcp against our server, Kea (memfile) and dnsmasq, same run.

Setup (identical for every server): two network namespaces created here, a veth pair between
them; the server side is 10.50.0.1/16, perfdhcp's side 10.50.0.2/16. perfdhcp is given the
server address, so it acts as a relay (unicast, giaddr 10.50.0.2) — the path an install subnet
behind ``ip helper-address`` takes. Every server serves 10.50.0.0/16 with the same pool
(10.50.1.0-10.50.200.255, 51,200 addresses), one-hour leases, leases persisted (ours: etcd,
running in the server namespace; Kea: memfile CSV; dnsmasq: its lease file, ``--no-ping``).
The server is pinned to CPU 1, perfdhcp (and etcd) to CPU 0.

Each server is driven at the same offered rates for ``--duration`` seconds each; the report
gives completed DORA exchanges/s and the drop rate (DISCOVERs without an ACK), per rate and best,
and our ratio to each peer. Bounded: #servers x #rates runs of ``--duration`` seconds.
Run as root: ``bench/dhcp_bench.sh [--duration 10] [--rates 1000,4000,16000]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER_IP, CLIENT_IP = "10.50.0.1", "10.50.0.2"
POOL = ("10.50.1.0", "10.50.200.255")
POOL_SIZE = 200 * 256
SUFFIX = str(os.getpid() % 100000)
PROFILE = os.environ.get("DHCP_BENCH_PROFILE", "")
"""When set: a path; our server runs under cProfile and writes its stats there."""


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=60)


class Net:
    def __init__(self) -> None:
        self.s, self.p = f"rcdhcpbS{SUFFIX}", f"rcdhcpbP{SUFFIX}"
        self.s_if, self.p_if = f"rcdbs{SUFFIX}", f"rcdbp{SUFFIX}"
        for ns in (self.s, self.p):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", self.s, "link", "add", self.s_if, "type", "veth",
           "peer", "name", self.p_if, "netns", self.p)  # fmt: skip
        sh("ip", "-n", self.s, "addr", "add", f"{SERVER_IP}/16", "dev", self.s_if)
        sh("ip", "-n", self.p, "addr", "add", f"{CLIENT_IP}/16", "dev", self.p_if)
        sh("ip", "-n", self.s, "link", "set", self.s_if, "up")
        sh("ip", "-n", self.p, "link", "set", self.p_if, "up")

    def close(self) -> None:
        for ns in (self.s, self.p):
            sh("ip", "netns", "del", ns, check=False)


def in_ns(ns: str, cpu: int | None, *argv: str) -> list[str]:
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    return ["ip", "netns", "exec", ns, *pin, *argv]


def udp_rcvbuf_errors(ns: str) -> int:
    """Datagrams the kernel dropped in ``ns`` because a socket's receive buffer was full."""
    text = sh("ip", "netns", "exec", ns, "cat", "/proc/net/snmp").stdout
    rows = [line.split() for line in text.splitlines() if line.startswith("Udp:")]
    return int(dict(zip(rows[0][1:], rows[1][1:], strict=True)).get("RcvbufErrors", 0))


@dataclass
class Result:
    server: str
    rate: int
    dora_per_s: float
    sent: int
    acked: int
    rcvbuf_drops: int = 0
    cpu: tuple[float, ...] = ()
    """CPU seconds of the server's processes during the run (ours: etcd, server)."""

    def cpu_us_per_dora(self) -> str:
        if not self.acked:
            return "-"
        return "+".join(f"{c / self.acked * 1e6:.0f}" for c in self.cpu)

    @property
    def drop_pct(self) -> float:
        return 100.0 * (1 - self.acked / self.sent) if self.sent else 100.0


class Server:
    name = ""

    def __init__(self, net: Net, work: Path) -> None:
        self.net, self.work = net, work / self.name
        self.work.mkdir()
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, argv: list[str], log: str, env: dict[str, str] | None = None) -> None:
        out = open(self.work / log, "ab")  # noqa: SIM115
        self.procs.append(subprocess.Popen(argv, stdout=out, stderr=out, env=env))
        out.close()

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs.clear()

    def cpu(self) -> list[float]:
        """CPU seconds (user+system) used so far by each process (server last)."""
        out = []
        for p in self.procs:
            try:
                fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
                out.append((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
            except (OSError, IndexError, ValueError):
                out.append(0.0)
        return out

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)


class Ours(Server):
    name = "ours"

    def start(self) -> None:
        data = self.work / f"etcd{time.monotonic_ns()}"
        self.spawn(in_ns(self.net.s, 0, "etcd", "--data-dir", str(data),
                         "--listen-client-urls", "http://127.0.0.1:2379",
                         "--advertise-client-urls", "http://127.0.0.1:2379",
                         "--listen-peer-urls", "http://127.0.0.1:2380"), "etcd.log")  # fmt: skip
        cfg = {
            "idc": "bench",
            "etcd": {"endpoints": ["127.0.0.1:2379"]},
            "logging": {"file": str(self.work / "dhcp.log"), "stderr": False,
                        "level": os.environ.get("DHCP_BENCH_LOG_LEVEL", "info")},
            "dhcp": {
                "interface": None,
                "server_id": SERVER_IP,
                "tftp_server": SERVER_IP,
                "lease_time": "1h",
                "relay_subnets": [{"subnet": "10.50.0.0/16", "gateway": CLIENT_IP,
                                   "ip_range": {"start": POOL[0], "end": POOL[1]}}],
            },
        }  # fmt: skip
        (self.work / "cfg.yaml").write_text(json.dumps(cfg))
        ready = self.work / "ready"
        ready.unlink(missing_ok=True)
        env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT / "src")}
        time.sleep(1.0)  # etcd up
        prof = ["-m", "cProfile", "-o", PROFILE] if PROFILE else []
        self.spawn(in_ns(self.net.s, 1, sys.executable, *prof, "-m", "regional_client.dhcp",
                         "--config", str(self.work / "cfg.yaml"), "--ready-file", str(ready)),
                   "server.log", env)  # fmt: skip
        for _ in range(300):
            if ready.exists() or not self.alive():
                break
            time.sleep(0.05)
        if not ready.exists():
            raise RuntimeError(
                f"our server did not start: {(self.work / 'server.log').read_text()}"
            )


class Kea(Server):
    name = "kea"

    def start(self) -> None:
        leases = self.work / f"leases{time.monotonic_ns()}.csv"
        cfg = {"Dhcp4": {
            "interfaces-config": {"interfaces": [self.net.s_if], "dhcp-socket-type": "udp"},
            "lease-database": {"type": "memfile", "persist": True, "name": str(leases),
                               "lfc-interval": 0},
            "valid-lifetime": 3600, "renew-timer": 1800, "rebind-timer": 3150,
            "authoritative": True,
            "subnet4": [{"subnet": "10.50.0.0/16", "id": 1,
                         "pools": [{"pool": f"{POOL[0]} - {POOL[1]}"}],
                         "option-data": [{"name": "routers", "data": CLIENT_IP}]}],
            "loggers": [{"name": "kea-dhcp4", "severity": "INFO",
                         "output_options": [{"output": str(self.work / "kea.log")}]}],
        }}  # fmt: skip
        (self.work / "kea.json").write_text(json.dumps(cfg))
        env = {"PATH": os.environ["PATH"], "KEA_PIDFILE_DIR": str(self.work),
               "KEA_LOCKFILE_DIR": str(self.work)}  # fmt: skip
        self.spawn(in_ns(self.net.s, 1, "kea-dhcp4", "-c", str(self.work / "kea.json")),
                   "stdout.log", env)  # fmt: skip
        time.sleep(1.5)
        if not self.alive():
            raise RuntimeError((self.work / "stdout.log").read_text())


class Dnsmasq(Server):
    name = "dnsmasq"

    def start(self) -> None:
        leases = self.work / f"leases{time.monotonic_ns()}"
        self.spawn(in_ns(self.net.s, 1, "dnsmasq", "--keep-in-foreground", "--port=0",
                         "--conf-file=/dev/null", f"--interface={self.net.s_if}",
                         "--bind-interfaces", "--no-ping", "--dhcp-authoritative",
                         f"--dhcp-range={POOL[0]},{POOL[1]},255.255.0.0,1h",
                         f"--dhcp-leasefile={leases}", "--dhcp-lease-max=100000",
                         f"--pid-file={self.work / 'pid'}", "--user=root", "--group=root",
                         f"--log-facility={self.work / 'dnsmasq.log'}"),
                   "stdout.log")  # fmt: skip
        time.sleep(1.0)
        if not self.alive():
            raise RuntimeError((self.work / "stdout.log").read_text())


def perfdhcp(
    net: Net, rate: int, duration: int, clients: int, work: Path
) -> tuple[int, int, float]:
    argv = in_ns(net.p, 0, "perfdhcp", "-4", "-r", str(rate), "-p", str(duration),
                 "-R", str(clients), "-W", "1000000", "-l", CLIENT_IP, SERVER_IP)  # fmt: skip
    r = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    out = r.stdout + r.stderr
    (work / f"perfdhcp-{rate}.txt").write_text(out)
    sent = _stat(out, "DISCOVER-OFFER", "sent packets")
    acked = _stat(out, "REQUEST-ACK", "received packets")
    # completed exchanges per second of the sending period (perfdhcp's own "Rate:" line also
    # divides by the -W drain time, the same for every server)
    return sent, acked, acked / duration


def _stat(out: str, section: str, field: str) -> int:
    part = out.split(f"Statistics for: {section}", 1)
    if len(part) < 2:
        return 0
    m = re.search(rf"{field}: (\d+)", part[1])
    return int(m.group(1)) if m else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rates", default="1000,4000,16000")
    ap.add_argument("--clients", type=int, default=40000, help="distinct MACs (<= pool size)")
    ap.add_argument("--servers", default="ours,kea,dnsmasq")
    ap.add_argument("--repeat", type=int, default=1, help="rounds; the report takes medians")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    rates = [int(x) for x in args.rates.split(",")]
    kinds = {"ours": Ours, "kea": Kea, "dnsmasq": Dnsmasq}
    results: list[Result] = []
    net = Net()
    try:
        with tempfile.TemporaryDirectory(prefix="dhcpbench") as tmp:
            for rnd, rate in ((r, x) for r in range(args.repeat) for x in rates):
                for name in args.servers.split(","):
                    work = Path(tmp) / f"{name}-{rate}-{rnd}"
                    work.mkdir()
                    srv = kinds[name](net, work)
                    srv.start()
                    before, cpu0 = udp_rcvbuf_errors(net.s), srv.cpu()
                    try:
                        sent, acked, dps = perfdhcp(net, rate, args.duration, args.clients,
                                                    srv.work)  # fmt: skip
                        cpu = tuple(b - a for a, b in zip(cpu0, srv.cpu(), strict=True))
                    finally:
                        srv.stop()
                    res = Result(name, rate, dps, sent, acked, udp_rcvbuf_errors(net.s) - before,
                                 cpu)  # fmt: skip
                    results.append(res)
                    print(f"  {name:8} offered {rate:6}/s: {dps:9.1f} DORA/s, "
                          f"drops {res.drop_pct:5.1f}% ({acked}/{sent}), "
                          f"socket overflows {res.rcvbuf_drops}, "
                          f"CPU µs/DORA {res.cpu_us_per_dora()}", flush=True)  # fmt: skip
    finally:
        net.close()
    report(results, rates)
    return 0


def report(results: list[Result], rates: list[int]) -> None:
    def get(name: str, rate: int) -> Result | None:
        """The median run (by DORA/s) of ``name`` at ``rate``."""
        runs = sorted(
            (r for r in results if r.server == name and r.rate == rate),
            key=lambda r: r.dora_per_s,
        )
        return runs[len(runs) // 2] if runs else None

    names = list(dict.fromkeys(r.server for r in results))
    print(f"\nDORA/s (drop %) by offered rate (median run); pool {POOL_SIZE}, same netns setup")
    print("offered  " + "".join(f"{n:>22}" for n in names) + "   ours/kea  ours/dnsmasq")
    for rate in rates:
        cells = []
        for n in names:
            r = get(n, rate)
            cells.append(f"{r.dora_per_s:>12.1f} ({r.drop_pct:5.1f}%)" if r else " " * 22)
        ratios = []
        for peer in ("kea", "dnsmasq"):
            o, p = get("ours", rate), get(peer, rate)
            ratios.append(f"{o.dora_per_s / p.dora_per_s:9.2f}x" if o and p and p.dora_per_s
                          else "        -")  # fmt: skip
        print(f"{rate:7}  " + "".join(f"{c:>22}" for c in cells) + "  " + "  ".join(ratios))
    best = {n: max((get(n, x).dora_per_s for x in rates if get(n, x)), default=0.0) for n in names}
    print("best     " + "".join(f"{best[n]:>22.1f}" for n in names), end="")
    for peer in ("kea", "dnsmasq"):
        if best.get("ours") and best.get(peer):
            print(f"  {best['ours'] / best[peer]:8.2f}x", end="")
    print()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
