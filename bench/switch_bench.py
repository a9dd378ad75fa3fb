"""Switch changes: 48 ports on one simulated switch, with and without batching; scrapli vs netmiko.

1. **Manager, batched**: 48 concurrent ``configure`` calls (access VLAN) → the per-switch worker
   collects them within ``batch_window`` and applies them in one session (read all, one config
   pass, read back all).
2. **Manager, unbatched**: the same 48 changes with ``max_batch=1`` → one session per change.
3. **Library peer**: one session, 48 single-port changes (``configure terminal`` / lines /
   ``end``) through scrapli 1.x (asyncssh) and through netmiko (paramiko, in a thread): seconds
   per change, printed as a ratio.

Everything runs against :class:`regional_rack.switch_sim.SimSwitch` (Cisco IOS CLI) on
127.0.0.1, twice: with no device latency (our own overhead) and with a modelled device
(``--login`` seconds before the first prompt, ``--delay`` seconds per line; real switches take
0.3-2 s to log in and ~5-50 ms per config line). Bounded: 48 ports, one run of each after a
one-change warm-up. Usage: ``python3 bench/switch_bench.py [--ports 48] [--login 0.3]
[--delay 0.005] [--scrapli2 /tmp/scrapli2]`` (for the last: ``pip install --target
/tmp/scrapli2 scrapli==2026.10.14``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from regional_client.config.switch import SwitchConfig, SwitchEntry
from regional_client.drivers.switch.base import ConnectionParams, PortConfig
from regional_client.drivers.switch.cisco import CiscoIos
from regional_client.drivers.switch.manager import SwitchManager
from regional_rack.switch_sim import SimSwitch, start_switches


def entry(sw: SimSwitch) -> SwitchEntry:
    return SwitchEntry(name="tor1", type="cisco", host=sw.host, port=sw.port,
                       username=sw.username, password=sw.password)  # fmt: skip


async def manager_run(sw: SimSwitch, vlan: int, batched: bool) -> tuple[float, int]:
    cfg = SwitchConfig(inventory=[entry(sw)], batch_window=0.05, max_batch=64 if batched else 1)
    m = SwitchManager(cfg)
    await m.start()
    t0 = time.perf_counter()
    await asyncio.gather(
        *(m.configure(PortConfig("access", (vlan,)), switch="tor1", port=p) for p in sw.ports)
    )
    dt = time.perf_counter() - t0
    await m.stop()
    assert all(p.access_vlan == vlan for p in sw.ports.values())
    return dt, m.sessions_opened


async def scrapli_run(sw: SimSwitch, vlan: int) -> float:
    d = CiscoIos(ConnectionParams(host=sw.host, port=sw.port, username=sw.username,
                                  password=sw.password, timeout=30))  # fmt: skip
    await d.connect()
    t0 = time.perf_counter()
    for p in sw.ports:
        await d._configs([f"interface {p}", f"switchport access vlan {vlan}"])
    dt = time.perf_counter() - t0
    await d.disconnect()
    return dt


SCRAPLI2 = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from scrapli import AuthOptions, Cli
port, n, user = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
cli = Cli(host="127.0.0.1", port=port, definition_file_or_name="cisco_iosxe",
          auth_options=AuthOptions(username=user, password=sys.stdin.readline().strip()))
cli.open()
t0 = time.perf_counter()
for i in range(1, n + 1):
    cli.send_inputs([f"interface GigabitEthernet1/0/{i}", "switchport access vlan 500"],
                    requested_mode="configuration")
print(time.perf_counter() - t0)
cli.close()
"""


async def scrapli2_run(sw: SimSwitch, path: str) -> float:
    """scrapli 2.x (compiled core, OpenSSH "bin" transport) from its own --target dir, since it
    cannot share an environment with scrapli 1.x. Password on stdin, not argv."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SCRAPLI2, path, str(sw.port), str(len(sw.ports)), sw.username,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate((sw.password + "\n").encode()), 300)
    return float(out.decode().strip().splitlines()[-1])


def netmiko_run(sw: SimSwitch, vlan: int) -> float:
    from netmiko import ConnectHandler

    conn = ConnectHandler(device_type="cisco_ios", host=sw.host, port=sw.port,
                          username=sw.username, password=sw.password, fast_cli=True)  # fmt: skip
    t0 = time.perf_counter()
    for p in list(sw.ports):
        conn.send_config_set([f"interface {p}", f"switchport access vlan {vlan}"])
    dt = time.perf_counter() - t0
    conn.disconnect()
    return dt


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ports", type=int, default=48)
    ap.add_argument("--login", type=float, default=0.3, help="modelled login time (s)")
    ap.add_argument("--delay", type=float, default=0.005, help="modelled latency per line (s)")
    ap.add_argument("--skip-netmiko", action="store_true")
    ap.add_argument("--scrapli2", metavar="DIR", help="pip --target dir holding scrapli 2.x")
    args = ap.parse_args()
    n = max(1, min(args.ports, 256))
    logging.getLogger("asyncio").setLevel(logging.ERROR)  # netmiko's logout races the close
    await scenario(n, 0.0, 0.0, args)
    await scenario(n, args.login, args.delay, args)


async def scenario(n: int, login: float, delay: float, args: argparse.Namespace) -> None:
    [sw] = await start_switches(1, "cisco_ios", ports=n, command_delay=delay, login_delay=login)
    try:
        print(f"\n{n} ports, one simulated Cisco IOS switch; device login {login * 1000:.0f} ms, "
              f"{delay * 1000:.0f} ms/line")  # fmt: skip
        warm = SwitchManager(SwitchConfig(inventory=[entry(sw)]))
        await warm.configure(PortConfig("access", (99,)), switch="tor1", port=next(iter(sw.ports)))
        await warm.stop()
        tb, sb = await manager_run(sw, 100, batched=True)
        tu, su = await manager_run(sw, 200, batched=False)
        print(
            f"manager batched   : {tb:7.2f} s total, {sb:3d} sessions, {tb / n * 1000:7.1f} ms/port"
        )
        print(
            f"manager unbatched : {tu:7.2f} s total, {su:3d} sessions, {tu / n * 1000:7.1f} ms/port"
        )
        print(f"batching speed-up : {tu / tb:5.1f}x  (sessions {su}/{sb})")
        ts = await scrapli_run(sw, 300)
        print(f"scrapli 1.x       : {ts / n * 1000:7.1f} ms per change (one session)")
        if args.scrapli2:
            t2 = await scrapli2_run(sw, args.scrapli2)
            print(f"scrapli 2.x       : {t2 / n * 1000:7.1f} ms per change (one session)")
            print(f"scrapli 2 / 1     : {t2 / ts:5.2f}x")
        if not args.skip_netmiko:
            tn = await asyncio.to_thread(netmiko_run, sw, 400)
            print(f"netmiko           : {tn / n * 1000:7.1f} ms per change (one session)")
            print(f"netmiko / scrapli : {tn / ts:5.1f}x")
    finally:
        await sw.stop()


if __name__ == "__main__":
    asyncio.run(main())
