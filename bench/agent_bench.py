"""Agent benchmark: image streaming and inventory, side by side with the usual shell tools.

1. **Image install** — a random image (``--mib``, default 256) served by ``busybox httpd`` on
   127.0.0.1 is written to a file by
   * ours: :class:`ImageInstaller` (stream, hash while writing, fsync, verify), and
   * peer: ``curl -s URL -o FILE && sync FILE && sha256sum FILE`` (download, then hash),
   each ``--runs`` times; medians in MB/s and the ratio ours/peer.
2. **Inventory** — :func:`inventory.collect` (no BMC) against running ``lscpu``, ``lsblk -J``,
   ``ip -j link`` and ``cat /proc/meminfo`` one after another (what a shell agent would do);
   median ms over ``--runs`` and the ratio.

Everything stays on loopback and under a temporary directory. Usage:
``python bench/agent_bench.py [--mib 256] [--runs 3]``. Needs busybox and curl.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from regional_client.agent import inventory
from regional_client.agent.installers import ImageInstaller


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_httpd(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(["busybox", "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", str(root)])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise SystemExit("busybox httpd did not start")


async def _ours(url: str, digest: str, target: Path) -> float:
    async def progress(pct: float, msg: str) -> None:
        return None

    t0 = time.perf_counter()
    result = await ImageInstaller().install(
        {"url": url, "sha256": digest, "target": str(target), "progress_step": 5}, progress
    )
    elapsed = time.perf_counter() - t0
    assert result.success, result.message
    return elapsed


def _peer(url: str, digest: str, target: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(["curl", "-s", "-f", url, "-o", str(target)], check=True)
    subprocess.run(["sync", str(target)], check=True)
    out = subprocess.run(["sha256sum", str(target)], check=True, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    assert out.stdout.split()[0] == digest
    return elapsed


def bench_image(mib: int, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="agent-bench-") as tmp:
        root = Path(tmp) / "www"
        root.mkdir()
        image = root / "img.raw"
        h = hashlib.sha256()
        with image.open("wb") as f:
            for _ in range(mib):
                block = os.urandom(1 << 20)
                h.update(block)
                f.write(block)
        digest = h.hexdigest()
        httpd, base = _start_httpd(root)
        try:
            ours, peer = [], []
            for i in range(runs):
                target = Path(tmp) / f"t{i}.img"
                ours.append(asyncio.run(_ours(f"{base}/img.raw", digest, target)))
                target.unlink()
                peer.append(_peer(f"{base}/img.raw", digest, target))
                target.unlink()
        finally:
            httpd.kill()
            httpd.wait()
    size_mb = mib * 1.048576
    o, p = size_mb / statistics.median(ours), size_mb / statistics.median(peer)
    print(f"image {mib} MiB, median of {runs}:")
    print(f"  ours  ImageInstaller (stream+hash+fsync+verify): {o:8.1f} MB/s")
    print(f"  peer  curl -o + sync + sha256sum:                {p:8.1f} MB/s")
    print(f"  ratio ours/peer throughput: {o / p:.2f}")


def bench_inventory(runs: int) -> None:
    ours, peer = [], []
    tools = [["lscpu"], ["lsblk", "-J", "-b"], ["ip", "-j", "link"], ["cat", "/proc/meminfo"]]
    for _ in range(runs):
        t0 = time.perf_counter()
        inventory.collect(with_bmc=False)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for argv in tools:
            subprocess.run(argv, check=True, capture_output=True)
        peer.append(time.perf_counter() - t0)
    o, p = statistics.median(ours) * 1000, statistics.median(peer) * 1000
    print(f"inventory, median of {runs}:")
    print(f"  ours  inventory.collect():               {o:7.2f} ms")
    print(f"  peer  lscpu + lsblk + ip link + meminfo: {p:7.2f} ms")
    print(f"  ratio ours/peer time: {o / p:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    bench_inventory(max(args.runs, 5))
    bench_image(args.mib, args.runs)


if __name__ == "__main__":
    main()
