"""BMC benchmark: 50 simulated BMCs, power status + set boot device + reset on all, capped.

Run from the repository root: ``python bench/bmc_bench.py [--count 50] [--cap 20]``.

For each protocol the same three phases run twice, side by side:

* **ours** — :class:`BmcController` (verified: boot device read back, power polled until the
  BMC reports the target state; already-on/off checks; audit, metrics, logs);
* **peer** — what a script would do with the reference client and no verification:
  plain ``ipmitool`` processes for IPMI, sushy (OpenStack's Redfish library, in a thread pool)
  for Redfish — the same concurrency cap.

IPMI peers are 50 BMCs served by the pyghmi simulator in its own process; Redfish peers are 50
fake systems of one ``sushy-emulator --fake`` process. The fake driver applies power changes
1-11 s late, so a *verified* Redfish reset waits for it and its latency measures the emulator,
not us; the unverified peer returns as soon as the request is accepted. Everything runs on
127.0.0.1; every phase is bounded by its operation count and per-call timeouts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from regional_client.config.bmc import BmcConfig
from regional_client.core.audit import Audit
from regional_client.core.metrics import Metrics
from regional_client.drivers.bmc.base import BmcTarget
from regional_client.drivers.bmc.controller import BmcController

PHASES = ("power_status", "set_boot_pxe", "power_reset")
RETRANSMITS = 4
"""ipmitool -R for both sides: the simulator is one Python thread and drops packets under load."""
Result = dict[str, tuple[float, list[float]]]  # phase -> (wall seconds, latencies)


def p99(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[98] if len(xs) > 1 else xs[0]


FAILURES: dict[str, int] = {}


async def run_phase(items: list, fn: Callable[..., Awaitable[object]]) -> tuple[float, list[float]]:
    """Run ``fn`` on every item at once (callers cap concurrency); failures are counted."""
    lat: list[float] = []

    async def one(x: object) -> None:
        t = time.perf_counter()
        try:
            await fn(x)
        except Exception as e:  # a bench reports failures, it does not stop at the first
            FAILURES[type(e).__name__] = FAILURES.get(type(e).__name__, 0) + 1
            return
        lat.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(one(x) for x in items))
    return time.perf_counter() - start, lat or [float("nan")]


def controller(cap: int, **cfg: object) -> BmcController:
    config = BmcConfig.model_validate({"max_concurrent": cap, "timeout": 10, "retries": 1, **cfg})
    return BmcController(config, Metrics("bench"), Audit(None, "bench"))


# -- IPMI -----------------------------------------------------------------------------------------


def start_ipmi_sim(count: int, pwfile: str) -> tuple[subprocess.Popen[str], list[int]]:
    argv = [sys.executable, "-m", "regional_rack.ipmi_sim", "--count", str(count)]
    proc = subprocess.Popen(
        [*argv, "--password-file", pwfile],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    ports = []
    assert proc.stdout is not None
    for line in proc.stdout:
        msg = json.loads(line)
        if msg.get("ready"):
            break
        ports.append(msg["port"])
    return proc, ports


async def ipmi_ours(ports: list[int], password: str, cap: int) -> Result:
    ctl = controller(cap, power_timeout=10, poll_interval=0.05, ipmi={"retransmits": RETRANSMITS})
    targets = [BmcTarget("127.0.0.1", "admin", password, port=p, sn=f"B{p}") for p in ports]
    await asyncio.gather(*(ctl.power_on(t) for t in targets))  # warm-up: machines running
    out: Result = {}
    out["power_status"] = await run_phase(targets, ctl.power_status)
    out["set_boot_pxe"] = await run_phase(targets, lambda t: ctl.set_boot_device(t, "pxe"))
    out["power_reset"] = await run_phase(targets, ctl.power_reset)
    await ctl.stop()
    return out


async def ipmi_peer(ports: list[int], pwfile: str, cap: int) -> Result:
    sem = asyncio.Semaphore(cap)

    async def ipmitool(port: int, *args: str) -> None:
        for _attempt in range(2):  # like ours (bmc.retries: 1)
            async with sem:
                proc = await asyncio.create_subprocess_exec(
                    "ipmitool", "-I", "lanplus", "-H", "127.0.0.1", "-p", str(port),
                    "-U", "admin", "-f", pwfile, "-C", "3", "-N", "1", "-R", str(RETRANSMITS),
                    *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                )  # fmt: skip
                try:
                    if await asyncio.wait_for(proc.wait(), 10) == 0:
                        return
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
        raise RuntimeError(f"ipmitool {' '.join(args)} failed twice on port {port}")

    out: Result = {}
    out["power_status"] = await run_phase(
        ports, lambda p: ipmitool(p, "chassis", "power", "status")
    )
    out["set_boot_pxe"] = await run_phase(ports, lambda p: ipmitool(p, "chassis", "bootdev", "pxe"))
    out["power_reset"] = await run_phase(ports, lambda p: ipmitool(p, "chassis", "power", "reset"))
    return out


async def bench_ipmi(count: int, cap: int) -> tuple[Result, Result]:
    password = "bench-" + secrets.token_hex(6)
    with tempfile.TemporaryDirectory(prefix="bmc-bench-") as d:
        pwfile = os.path.join(d, "pw")
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, password.encode())
        os.close(fd)
        proc, ports = start_ipmi_sim(count, pwfile)
        try:
            ours = await ipmi_ours(ports, password, cap)
            peer = await ipmi_peer(ports, pwfile, cap)
        finally:
            proc.terminate()
            proc.wait(10)
    return ours, peer


# -- Redfish --------------------------------------------------------------------------------------


async def redfish_ours(emu: object, password: str, cap: int) -> Result:
    ctl = controller(cap, power_timeout=30, poll_interval=0.5, redfish={"scheme": "http"})
    targets = [
        BmcTarget("127.0.0.1", "admin", password, "redfish", emu.port, f"S{i}", system_id=u)  # type: ignore[attr-defined]
        for i, u in enumerate(emu.systems)  # type: ignore[attr-defined]
    ]
    # warm-up, like the peer's sushy.Sushy() constructor: service root and system discovery
    await asyncio.gather(*(ctl.power_status(t) for t in targets))
    out: Result = {}
    out["power_status"] = await run_phase(targets, ctl.power_status)
    out["set_boot_pxe"] = await run_phase(targets, lambda t: ctl.set_boot_device(t, "pxe"))
    out["power_reset"] = await run_phase(targets, ctl.power_reset)
    await ctl.stop()
    return out


async def redfish_peer(emu: object, password: str, cap: int) -> Result:
    import sushy
    from sushy import auth as sushy_auth

    pool = ThreadPoolExecutor(max_workers=cap)
    loop = asyncio.get_running_loop()
    url = f"http://127.0.0.1:{emu.port}/redfish/v1"  # type: ignore[attr-defined]
    conns = {
        u: sushy.Sushy(url, auth=sushy_auth.BasicAuth("admin", password))
        for u in emu.systems  # type: ignore[attr-defined]
    }

    def status(u: str) -> object:
        return conns[u].get_system(f"/redfish/v1/Systems/{u}").power_state

    def boot(u: str) -> None:
        conns[u].get_system(f"/redfish/v1/Systems/{u}").set_system_boot_options(
            sushy.BOOT_SOURCE_TARGET_PXE, enabled=sushy.BOOT_SOURCE_ENABLED_ONCE
        )

    def reset(u: str) -> None:
        conns[u].get_system(f"/redfish/v1/Systems/{u}").reset_system(sushy.RESET_FORCE_RESTART)

    def threaded(fn: Callable[[str], object]) -> Callable[[str], Awaitable[object]]:
        return lambda u: loop.run_in_executor(pool, fn, u)

    systems = list(emu.systems)  # type: ignore[attr-defined]
    out: Result = {}
    out["power_status"] = await run_phase(systems, threaded(status))
    out["set_boot_pxe"] = await run_phase(systems, threaded(boot))
    out["power_reset"] = await run_phase(systems, threaded(reset))
    pool.shutdown()
    return out


async def bench_redfish(count: int, cap: int) -> tuple[Result, Result]:
    from tests.bmc.emulators import SushyEmulator

    password = "bench-" + secrets.token_hex(6)
    with tempfile.TemporaryDirectory(prefix="bmc-bench-rf-") as d:
        emu = SushyEmulator(Path(d), count, "admin", password)
        emu.start()
        try:
            ours = await redfish_ours(emu, password, cap)
            peer = await redfish_peer(emu, password, cap)
        finally:
            emu.stop()
    return ours, peer


# -- report ---------------------------------------------------------------------------------------


def report(proto: str, peer_name: str, ours: Result, peer: Result, count: int) -> None:
    print(f"\n{proto}: {count} BMCs; ours = verified controller, peer = {peer_name}")
    print(f"{'phase':<14}{'ours ops/s':>11}{'peer ops/s':>11}{'ratio':>7}"
          f"{'ours p99 ms':>13}{'peer p99 ms':>13}{'ratio':>7}")  # fmt: skip
    for ph in PHASES:
        (ow, ol), (pw, pl) = ours[ph], peer[ph]
        o_rate, p_rate = count / ow, count / pw
        o99, p99_ = p99(ol) * 1000, p99(pl) * 1000
        print(f"{ph:<14}{o_rate:>11.1f}{p_rate:>11.1f}{o_rate / p_rate:>7.2f}"
              f"{o99:>13.1f}{p99_:>13.1f}{o99 / p99_:>7.2f}")  # fmt: skip
    tot_o = sum(ours[p][0] for p in PHASES)
    tot_p = sum(peer[p][0] for p in PHASES)
    print(f"{'all 3 phases':<14}{3 * count / tot_o:>11.1f}{3 * count / tot_p:>11.1f}"
          f"{tot_p / tot_o:>7.2f}")  # fmt: skip
    print(f"failed operations (both sides): {FAILURES or 'none'}")
    FAILURES.clear()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--cap", type=int, default=20, help="bmc.max_concurrent")
    ap.add_argument("--only", choices=("ipmi", "redfish"))
    args = ap.parse_args()
    print(f"cap (bmc.max_concurrent) = {args.cap}")
    if args.only in (None, "ipmi"):
        t = time.monotonic()
        ours, peer = asyncio.run(bench_ipmi(args.count, args.cap))
        report("IPMI", "plain ipmitool -C 3, no read-back", ours, peer, args.count)
        print(f"(IPMI bench took {time.monotonic() - t:.1f}s)")
    if args.only in (None, "redfish"):
        t = time.monotonic()
        ours, peer = asyncio.run(bench_redfish(args.count, args.cap))
        report("Redfish", "sushy in a thread pool, no read-back", ours, peer, args.count)
        print(f"(Redfish bench took {time.monotonic() - t:.1f}s; verified reset waits for the "
              "emulator's 1-11 s power delay)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
