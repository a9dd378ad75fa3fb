"""Agent API load: 1,000 tasks; getNextOperation and progress from many concurrent agents.

Runs a real etcd and ``regional-client run`` (pinned to CPU 0) and drives them from CPU 1:

1. getNextOperation at full speed with ``wrk`` (64 connections, rotating over the 1,000 serials
   and their agent tokens): requests/s, p50/p99 latency, regional-client CPU.
2. progress at full speed with ``wrk``: requests/s, task writes/s (the regional client's own
   counter) and etcd transactions/s (etcd revision delta; one txn carries up to 64), CPU.
3. progress paced like 1,000 agents reporting 10 times a second (asyncio client, bounded): the
   rate achieved, etcd writes/s and regional-client CPU.

Everything listens on 127.0.0.1 only. Usage: ``python3 bench/api_bench.py [--seconds 10]``.
Needs ``wrk`` (Debian package) and ``taskset`` (util-linux).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
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
sys.path.insert(0, str(ROOT / "src"))

from tests.helpers.etcd import EtcdProcess, free_port

from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys

IDC = "bench"
N_TASKS = 1000

LUA = r"""
local pairs_ = {}
for line in io.lines("%(tokens)s") do
  local sn, tok = line:match("([^ ]+) ([^ ]+)")
  pairs_[#pairs_ + 1] = {sn, tok}
end
local i = 0
request = function()
  i = i %% #pairs_ + 1
  local p = pairs_[i]
  local body
  if "%(kind)s" == "progress" then
    body = '{"sn":"' .. p[1] .. '","operation":"os_install","percent":' .. (i %% 100) ..
           ',"message":"writing image"}'
  else
    body = '{"sn":"' .. p[1] .. '"}'
  end
  return wrk.format("POST", "%(path)s",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. p[2]}, body)
end
"""


def key_writes(port: int) -> float:
    """Keys this regional client wrote to etcd (its own metric; one txn may write many keys)."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/metrics", timeout=5) as r:
        m = re.search(rb"regional_client_etcd_key_writes\{[^}]*\} ([\d.e+]+)", r.read())
    return float(m.group(1)) if m else 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(port: int, kind: str, path: str, tokens: Path, seconds: int, tmp: Path) -> dict:
    script = tmp / f"{kind}.lua"
    script.write_text(LUA % {"tokens": tokens, "kind": kind, "path": path})
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", "-c64", f"-d{seconds}s", "--latency",
         "-s", str(script), f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": lat.get("50"), "p99": lat.get("99"),
            "errors": int(non2xx.group(1)) if non2xx else 0}  # fmt: skip


async def _post(reader, writer, port: int, path: str, body: bytes, token: str) -> int:
    """One HTTP/1.1 keep-alive POST on an open connection; returns the status code."""
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
    await reader.readexactly(length)
    return status


async def claim_tokens(port: int, n: int, deadline: float, rc: Any) -> list[tuple[str, str]]:
    creds: list[tuple[str, str]] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/api/v1") as http:
        for i in range(n):
            sn = f"BENCH{i:05d}"
            mac = f"52:54:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}"
            while True:
                r = await http.post("/report", json={"sn": sn, "mac": mac, "hardware": {}})
                if r.status_code == 200 and r.json().get("token"):
                    creds.append((sn, r.json()["token"]))
                    break
                if time.monotonic() > deadline or rc.poll() is not None:
                    sys.exit(f"no agent token for {sn}: {r.status_code} {r.text[:200]}")
                await asyncio.sleep(0.2)  # the cache has not seen the task yet
    return creds


async def paced_progress(
    port: int, creds: list[tuple[str, str]], rate_each: float, seconds: float, conns: int = 100
) -> tuple[int, int]:
    """Every agent posts progress ``rate_each`` times a second for ``seconds`` (bounded).

    ``conns`` keep-alive connections each carry ``len(creds)/conns`` agents, sending on a fixed
    schedule; a connection whose previous answer has not come back falls behind (the shortfall
    shows as achieved < offered). A plain asyncio client: httpx cannot drive this rate here.
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    per_conn = [creds[i::conns] for i in range(conns)]
    counts = {"sent": 0, "ok": 0}

    async def conn(agents: list[tuple[str, str]], offset: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        interval = 1 / (rate_each * len(agents))
        nxt = loop.time() + offset * interval
        i = 0
        try:
            while loop.time() < end:
                await asyncio.sleep(max(0.0, nxt - loop.time()))
                nxt += interval
                sn, tok = agents[i % len(agents)]
                i += 1
                body = json.dumps({"sn": sn, "percent": i % 100, "message": "x"}).encode()
                counts["sent"] += 1
                if await _post(reader, writer, port, "/api/v1/progress", body, tok) == 200:
                    counts["ok"] += 1
        finally:
            writer.close()

    await asyncio.gather(*(conn(a, k / conns) for k, a in enumerate(per_conn)))
    return counts["sent"], counts["ok"]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="api-bench-"))
    etcd = EtcdProcess(tmp / "etcd")
    etcd.start()
    port = free_port()
    cfg = tmp / "rc.yaml"
    cfg.write_text(yaml.safe_dump({
        "idc": IDC, "api_port": port, "state_dir": str(tmp / "state"),
        "api": {"listen_addr": "127.0.0.1", "admin": {"port": 0},
                "agent": {"report_rate": 0}},  # 1,000 agents claim from one address
        "etcd": {"endpoints": [etcd.endpoint]},
        "dhcp": {"enabled": False}, "tftp": {"enabled": False}, "http_boot": {"enabled": False},
        "switch": {"enabled": False},
        "bmc": {"enabled": False}, "workflow": {"enabled": False},
        "logging": {"level": "warning", "file": str(tmp / "rc.log"), "stderr": False},
    }))  # fmt: skip
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT / "src")}
    rc = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-m", "regional_client", "run", "-c", str(cfg)],
        env=env,
    )
    store = EtcdStore([etcd.endpoint])
    keys = Keys(IDC)
    try:
        await store.connect()
        for i in range(N_TASKS):
            sn = f"BENCH{i:05d}"
            await store.put(keys.task(sn), {
                "sn": sn, "mac": f"52:54:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
                "status": "installing", "operations": ["hardware_config", "os_install"],
                "agent_session": {"boot": 1},  # as the power step opens it
            })  # fmt: skip
        # Each agent claims its boot's token with its first report (SPEC §5).
        creds = await claim_tokens(port, N_TASKS, time.monotonic() + 120, rc)
        tokens = tmp / "tokens.txt"
        tokens.write_text("".join(f"{sn} {tok}\n" for sn, tok in creds))
        await asyncio.sleep(1.5)
        results = {}

        c0, t0 = cpu_seconds(rc.pid), time.monotonic()
        r = run_wrk(port, "next", "/api/v1/device/getNextOperation", tokens, args.seconds, tmp)
        r["rc_cpu"] = (cpu_seconds(rc.pid) - c0) / (time.monotonic() - t0)
        results["getNextOperation (wrk, 64 conns)"] = r

        rev0, c0, t0 = await store.revision(), cpu_seconds(rc.pid), time.monotonic()
        w0 = key_writes(port)
        r = run_wrk(port, "progress", "/api/v1/progress", tokens, args.seconds, tmp)
        await asyncio.sleep(1.2)  # let the last coalesced round land
        dt = time.monotonic() - t0
        r["etcd_txns_per_s"] = (await store.revision() - rev0) / dt
        r["etcd_writes_per_s"] = (key_writes(port) - w0) / dt
        r["rc_cpu"] = (cpu_seconds(rc.pid) - c0) / dt
        results["progress (wrk, 64 conns)"] = r

        rev0, c0, t0 = await store.revision(), cpu_seconds(rc.pid), time.monotonic()
        w0 = key_writes(port)
        sent, ok = await paced_progress(port, creds, 10.0, args.seconds)
        await asyncio.sleep(1.2)
        dt = time.monotonic() - t0
        results["progress paced (1,000 agents x 10/s offered)"] = {
            "offered_per_s": N_TASKS * 10, "achieved_per_s": round(ok / dt),
            "sent": sent, "ok": ok,
            "etcd_txns_per_s": round((await store.revision() - rev0) / dt, 1),
            "etcd_writes_per_s": round((key_writes(port) - w0) / dt, 1),
            "rc_cpu": round((cpu_seconds(rc.pid) - c0) / dt, 2),
        }  # fmt: skip
        print(json.dumps(results, indent=2))
        print("\nsummary:")
        g = results["getNextOperation (wrk, 64 conns)"]
        print(
            f"  getNextOperation: {g['rps']:.0f} req/s, p50 {g['p50']}, p99 {g['p99']}, "
            f"regional client {g['rc_cpu']:.2f} cores (target >= 3000 req/s, p99 < 50ms)"
        )
        p = results["progress (wrk, 64 conns)"]
        print(
            f"  progress (max rate): {p['rps']:.0f} req/s -> {p['etcd_writes_per_s']:.0f} task "
            f"writes/s in {p['etcd_txns_per_s']:.0f} etcd txns/s, regional client "
            f"{p['rc_cpu']:.2f} cores"
        )
        q = results["progress paced (1,000 agents x 10/s offered)"]
        print(
            f"  progress (paced): {q['achieved_per_s']} of {q['offered_per_s']} req/s -> "
            f"{q['etcd_writes_per_s']} task writes/s in {q['etcd_txns_per_s']} etcd txns/s, "
            f"regional client {q['rc_cpu']} cores "
            "(target <= 1000 writes/s, < 0.5 core)"
        )
    finally:
        await store.close()
        rc.terminate()
        try:
            rc.wait(20)
        except subprocess.TimeoutExpired:
            rc.kill()
        etcd.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
