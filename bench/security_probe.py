"""Attack the install-side inputs of a running regional client and print what each costs.

Measures, over loopback only, the figures of issue #18 for any checkout (``--src`` points at
its ``src/``: run it once on main for "before", once on a branch for "after"):

* ``slow_heads``: 1,100 connections from 20 addresses that send a partial request head and
  then nothing; are ``/health``, HTTP boot and TFTP still answered, how many of them does the
  server still hold after 15 s (``--nofile``: the server's ``RLIMIT_NOFILE``, 1024 — the usual
  default without ``LimitNOFILE`` — or the unit's 65536);
* ``big_body``: RSS growth of the server for one 64 MiB request body;
* ``range``: the status of a boot-file request with a 4,300-digit ``Range`` header;
* ``discovery_flood``: unauthenticated 1 MiB discovery reports against an etcd with a
  64 MiB quota: reports accepted, whether etcd raised ``NOSPACE``, what ``/health`` said;
* ``tftp_slots``: 100 read requests from one source that never ACK, then one from another
  source: its answer and how long until it was served;
* ``netascii``: RSS growth for 40 concurrent netascii reads of a 4 MiB file.

Every loop is bounded in count and time; the server, etcd and all sockets are local and
stopped at the end.

    python bench/security_probe.py --src /work/main/src          # before
    python bench/security_probe.py --src src --new               # after (new config keys)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers.etcd import free_port

MiB = 1024 * 1024


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class PeakRss:
    """Sample a process's RSS every 20 ms while a block runs; ``growth`` in bytes."""

    def __init__(self, pid: int) -> None:
        self.pid, self.base, self.peak = pid, rss(pid), 0
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss(self.pid))
            await asyncio.sleep(0.02)

    async def __aenter__(self) -> PeakRss:
        self._task = asyncio.get_running_loop().create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()

    @property
    def growth_mib(self) -> float:
        return round(max(0, self.peak - self.base) / MiB, 1)


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Setup:
    def __init__(self, src: Path, new: bool, tmp: Path, nofile: int) -> None:
        self.src, self.new, self.tmp, self.nofile = src, new, tmp, nofile
        self.api, self.tftp = free_port(), free_port()
        self.etcd_port, self.peer = free_port(), free_port()
        self.procs: list[subprocess.Popen[bytes]] = []

    def start_etcd(self) -> str:
        url = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{self.peer}"
        log = open(self.tmp / "etcd.log", "wb")  # noqa: SIM115
        self.procs.append(subprocess.Popen(
            ["etcd", "--name", "p", "--data-dir", str(self.tmp / "etcd"),
             "--listen-client-urls", url, "--advertise-client-urls", url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"p={peer}", "--quota-backend-bytes", str(64 * MiB)],
            stdout=log, stderr=log,
        ))  # fmt: skip
        for _ in range(100):
            try:
                if b"true" in httpx.get(f"{url}/health", timeout=1).content:
                    return f"127.0.0.1:{self.etcd_port}"
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        sys.exit("etcd did not start")

    def start_rc(self, endpoint: str) -> subprocess.Popen[bytes]:
        root = self.tmp / "tftp"
        root.mkdir()
        (root / "kernel").write_bytes(os.urandom(MiB))
        (root / "text.cfg").write_bytes(b"line of text\n" * (4 * MiB // 13))
        api: dict[str, Any] = {"listen_addr": "127.0.0.1"}
        if self.new:
            api["admin"] = {"port": 0}
        cfg = {
            "idc": "probe", "api_port": self.api, "state_dir": str(self.tmp / "state"), "api": api,
            "etcd": {"endpoints": [endpoint]},
            "dhcp": {"enabled": False}, "switch": {"enabled": False},
            "bmc": {"enabled": False}, "workflow": {"enabled": False},
            "tftp": {"root_dir": str(root), "listen_addr": f"127.0.0.1:{self.tftp}"},
            "http_boot": {"enabled": True},
            "pxe": {"config_dir": str(root / "pxelinux.cfg"), "kernel_dir": str(root / "k"),
                    "initrd_dir": str(root / "i")},
            "logging": {"level": "warning", "file": str(self.tmp / "rc.log"), "stderr": False},
        }  # fmt: skip
        (self.tmp / "rc.yaml").write_text(yaml.safe_dump(cfg))
        env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(self.src)}

        def limit() -> None:
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            n = self.nofile if hard == resource.RLIM_INFINITY else min(self.nofile, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))

        proc = subprocess.Popen(
            [sys.executable, "-m", "regional_client", "run", "-c", str(self.tmp / "rc.yaml")],
            env=env, preexec_fn=limit,
        )  # fmt: skip
        self.procs.append(proc)
        for _ in range(300):
            try:
                if httpx.get(self.url("/api/v1/health"), timeout=1).status_code == 200:
                    return proc
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        sys.exit("regional client did not start")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.api}{path}"

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.terminate()
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()


async def slow_heads(s: Setup, pid: int, n: int = 1100, sources: int = 20) -> dict[str, Any]:
    conns = []
    for i in range(n):
        src = (f"127.0.5.{i % sources + 1}", 0)
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", s.api, local_addr=src), 2
            )
        except (OSError, TimeoutError):
            break
        w.write(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        conns.append((r, w))
    await asyncio.sleep(1)
    t0 = time.monotonic()
    try:
        async with httpx.AsyncClient() as http:
            ok = (await http.get(s.url("/api/v1/health"), timeout=5)).status_code
    except httpx.HTTPError as e:
        ok = f"failed: {type(e).__name__}"
    health_s = round(time.monotonic() - t0, 3)
    try:
        async with httpx.AsyncClient() as http:
            boot: Any = (await http.get(s.url("/boot/kernel"), timeout=5)).status_code
    except httpx.HTTPError as e:
        boot = f"failed: {type(e).__name__}"
    tftp = await _tftp_first(s, "127.0.3.1")
    await asyncio.sleep(13)
    held = sum(1 for r, _ in conns if not r.at_eof())
    fds = open_fds(pid)
    for _, w in conns:
        w.close()
    return {"opened": len(conns), "health_during": ok, "health_seconds": health_s,
            "http_boot_during": boot, "tftp_during": tftp,
            "still_held_after_15s": held, "server_fds": fds}  # fmt: skip


async def _tftp_first(s: Setup, source: str) -> str:
    sk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sk.bind((source, 0))
    sk.settimeout(3)
    try:
        sk.sendto(_rrq(b"kernel"), ("127.0.0.1", s.tftp))
        data, _ = sk.recvfrom(65536)
        return "DATA" if data[1] == 3 else f"ERROR {data[4:-1].decode(errors='replace')}"
    except TimeoutError:
        return "no answer"
    finally:
        sk.close()


async def big_body(s: Setup, pid: int) -> dict[str, Any]:
    body = b'{"sn":"X","mac":"52:54:00:00:00:01","hardware":{"x":"' + b"a" * (64 * MiB) + b'"}}'
    async with PeakRss(pid) as peak:
        try:
            async with httpx.AsyncClient() as http:
                r = await http.post(s.url("/api/v1/report"), content=body, timeout=60,
                                    headers={"content-type": "application/json"})  # fmt: skip
            status: Any = r.status_code
        except httpx.HTTPError as e:
            status = f"closed ({type(e).__name__})"
        await asyncio.sleep(0.5)
    return {"status": status, "peak_rss_growth_mib": peak.growth_mib}


async def range_header(s: Setup) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        r = await http.get(s.url("/boot/kernel"), headers={"Range": "bytes=" + "9" * 4301 + "-"})
    return {"status": r.status_code}


async def discovery_flood(s: Setup, n: int = 80) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    hw = {"blob": "x" * (1 * MiB - 100)}
    t0 = time.monotonic()
    async with httpx.AsyncClient(timeout=30) as http:
        for i in range(n):
            body = {"sn": f"FLOOD{i:04d}", "mac": "52:54:00:00:10:01", "hardware": hw}
            try:
                st = str((await http.post(s.url("/api/v1/report"), json=body)).status_code)
            except httpx.HTTPError as e:
                st = type(e).__name__
            statuses[st] = statuses.get(st, 0) + 1
        seconds = round(time.monotonic() - t0, 2)
        health = (await http.get(s.url("/api/v1/health"))).json()
    alarms = subprocess.run(
        ["etcdctl", "--endpoints", f"127.0.0.1:{s.etcd_port}", "alarm", "list"],
        capture_output=True, text=True, env={**os.environ, "ETCDCTL_API": "3"},
    ).stdout.strip()  # fmt: skip
    return {"answers": statuses, "seconds": seconds, "etcd_alarms": alarms or "none",
            "health_status": health.get("status")}  # fmt: skip


async def discovery_many(s: Setup, n: int = 1500, sources: int = 50) -> dict[str, Any]:
    """60 KiB reports (under the 64 KiB cap) for new serials from 50 addresses."""
    statuses: dict[str, int] = {}
    hw = {"blob": "x" * (60 * 1024)}
    clients = [
        httpx.AsyncClient(timeout=30, transport=httpx.AsyncHTTPTransport(
            local_address=f"127.0.2.{i + 1}"))
        for i in range(sources)
    ]  # fmt: skip
    t0 = time.monotonic()
    try:
        for i in range(n):
            body = {"sn": f"MANY{i:05d}", "mac": "52:54:00:00:20:01", "hardware": hw}
            try:
                r = await clients[i % sources].post(s.url("/api/v1/report"), json=body)
                st = str(r.status_code)
            except httpx.HTTPError as e:
                st = type(e).__name__
            statuses[st] = statuses.get(st, 0) + 1
            if time.monotonic() - t0 > 120:
                break
        health = (await clients[0].get(s.url("/api/v1/health"))).json()
    finally:
        for c in clients:
            await c.aclose()
    alarms = subprocess.run(
        ["etcdctl", "--endpoints", f"127.0.0.1:{s.etcd_port}", "alarm", "list"],
        capture_output=True, text=True, env={**os.environ, "ETCDCTL_API": "3"},
    ).stdout.strip()  # fmt: skip
    return {"answers": statuses, "seconds": round(time.monotonic() - t0, 2),
            "etcd_alarms": alarms or "none", "health_status": health.get("status")}  # fmt: skip


def _rrq(name: bytes, mode: bytes = b"octet") -> bytes:
    return b"\x00\x01" + name + b"\x00" + mode + b"\x00"


async def tftp_slots(s: Setup) -> dict[str, Any]:
    socks = []
    for _ in range(100):
        sk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sk.bind(("127.0.0.2", 0))
        sk.sendto(_rrq(b"kernel"), ("127.0.0.1", s.tftp))
        socks.append(sk)  # never ACKs
    await asyncio.sleep(0.3)
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.3", 0))
    other.settimeout(0.5)
    t0 = time.monotonic()
    first, served_after = None, None
    while time.monotonic() - t0 < 15 and served_after is None:
        other.sendto(_rrq(b"kernel"), ("127.0.0.1", s.tftp))
        try:
            data, _ = other.recvfrom(65536)
        except TimeoutError:
            continue
        op = struct.unpack("!H", data[:2])[0]
        first = first or ("DATA" if op == 3 else f"ERROR {data[4:-1].decode(errors='replace')}")
        if op == 3:
            served_after = round(time.monotonic() - t0, 2)
        else:
            await asyncio.sleep(0.5)
    for sk in [*socks, other]:
        sk.close()
    await asyncio.sleep(7)  # let the abandoned transfers time out before the next probe
    return {"first_answer": first, "served_after_seconds": served_after}


async def netascii(s: Setup, pid: int, n: int = 40) -> dict[str, Any]:
    socks = []
    async with PeakRss(pid) as peak:
        for i in range(n):
            sk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sk.bind((f"127.0.1.{i + 1}", 0))
            sk.sendto(_rrq(b"text.cfg", b"netascii"), ("127.0.0.1", s.tftp))
            socks.append(sk)
        await asyncio.sleep(3)
    answers: dict[str, int] = {}
    for sk in socks:
        sk.settimeout(0.2)
        try:
            data, _ = sk.recvfrom(65536)
            k = "DATA" if data[1] == 3 else f"ERROR {data[4:-1].decode(errors='replace')}"
        except TimeoutError:
            k = "none"
        answers[k] = answers.get(k, 0) + 1
        sk.close()
    await asyncio.sleep(7)  # the abandoned transfers time out
    return {"answers": answers, "peak_rss_growth_mib": peak.growth_mib}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", type=Path, default=ROOT / "src")
    ap.add_argument("--new", action="store_true", help="the checkout knows api.admin")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--nofile", type=int, default=1024,
                    help="the server's RLIMIT_NOFILE (1024: no LimitNOFILE; the unit sets 65536)")
    args = ap.parse_args()
    for b in ("etcd", "etcdctl"):
        if not shutil.which(b):
            sys.exit(f"{b} not found (Debian etcd-server, etcd-client)")
    tmp = Path(tempfile.mkdtemp(prefix="sec-probe-"))
    s = Setup(args.src.resolve(), args.new, tmp, args.nofile)
    results: dict[str, Any] = {}
    try:
        proc = s.start_rc(s.start_etcd())
        results["range"] = await range_header(s)
        results["big_body"] = await big_body(s, proc.pid)
        results["tftp_slots"] = await tftp_slots(s)
        results["netascii"] = await netascii(s, proc.pid)
        results["slow_heads"] = await slow_heads(s, proc.pid)
        results["discovery_flood"] = await discovery_flood(s)
        if results["discovery_flood"]["etcd_alarms"] == "none":
            results["discovery_many"] = await discovery_many(s)
    finally:
        s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
