"""SNMP MAC lookup against snmpsim (a real SNMP agent) serving a recorded BRIDGE-MIB walk.

``data/tor-bridge.snmprec`` is shaped like a 48-port Catalyst walk: IF-MIB names, BRIDGE-MIB
bridge port → ifIndex (10101.. for Gi1/0/n), dot1dTpFdb entries and one MAC known only in the
Q-BRIDGE table (VLAN 100); ``data/tor-bridge@100.snmprec`` is VLAN 100's own bridge instance
as Cisco serves it to community ``tor-bridge@100``. snmpsim indexes its data with :mod:`dbm`
after dropping privileges, and the interpreter lives under /root here, so it keeps running as
root (``--process-user root``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from regional_client.config.switch import SwitchConfig, SwitchEntry
from regional_client.core.errors import DriverTimeout
from regional_client.drivers.switch.manager import SwitchManager
from regional_client.drivers.switch.snmp import SnmpMacLookup, mac_suffix
from regional_rack.switch_sim import start_switches

DATA = Path(__file__).parent / "data" / "tor-bridge.snmprec"
COMMUNITY = "tor-bridge"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def snmpsim() -> Iterator[int]:
    exe = shutil.which("snmpsim-command-responder")
    assert exe, "snmpsim is in the test extra: pip install snmpsim pysmi"
    work = Path(tempfile.mkdtemp(prefix="switch-snmpsim-"))
    (work / "data").mkdir()
    (work / "cache").mkdir()
    shutil.copy(DATA, work / "data" / f"{COMMUNITY}.snmprec")
    # Cisco community indexing: VLAN 100's bridge instance answers to "tor-bridge@100"
    shutil.copy(DATA.with_name(f"{COMMUNITY}@100.snmprec"), work / "data")
    port = free_udp_port()
    log = open(work / "log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [exe, f"--data-dir={work / 'data'}", f"--cache-dir={work / 'cache'}",
         f"--agent-udpv4-endpoint=127.0.0.1:{port}", "--process-user=root",
         "--process-group=root"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        asyncio.run(_wait_ready(port))
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


async def _wait_ready(port: int) -> None:
    lookup = SnmpMacLookup("127.0.0.1", COMMUNITY, port, timeout=0.5, retries=0)
    for _ in range(60):
        try:
            await lookup.find("0c:c4:7a:12:34:56")
            return
        except DriverTimeout:
            await asyncio.sleep(0.5)
    raise RuntimeError("snmpsim did not answer within 30 s")


def test_mac_suffix() -> None:
    assert mac_suffix("0C-C4-7A-12-34-56") == "12.196.122.18.52.86"


async def test_bridge_mib_lookup(snmpsim: int) -> None:
    loc = await SnmpMacLookup("127.0.0.1", COMMUNITY, snmpsim, timeout=3).find("0cc4.7a12.3456")
    assert loc is not None and loc.port == "Gi1/0/5"


async def test_q_bridge_lookup_reports_vlan(snmpsim: int) -> None:
    loc = await SnmpMacLookup("127.0.0.1", COMMUNITY, snmpsim, timeout=3).find("0c:c4:7a:99:be:ef")
    assert loc is not None and (loc.port, loc.vlan) == ("Gi1/0/9", 100)


async def test_cisco_per_vlan_community_indexing(snmpsim: int) -> None:
    mac = "0c:c4:7a:5a:5a:02"  # only in VLAN 100's bridge instance
    plain = SnmpMacLookup("127.0.0.1", COMMUNITY, snmpsim, timeout=3)
    assert await plain.find(mac) is None
    cisco = SnmpMacLookup("127.0.0.1", COMMUNITY, snmpsim, timeout=3, vlan_communities=True)
    loc = await cisco.find(mac)
    assert loc is not None and (loc.port, loc.vlan) == ("Gi1/0/12", 100)


async def test_unknown_mac(snmpsim: int) -> None:
    assert (
        await SnmpMacLookup("127.0.0.1", COMMUNITY, snmpsim, timeout=3).find("02:00:00:00:00:01")
        is None
    )


async def test_wrong_community_times_out(snmpsim: int) -> None:
    with pytest.raises(DriverTimeout):
        await SnmpMacLookup("127.0.0.1", "nope", snmpsim, timeout=0.3, retries=0).find(
            "0c:c4:7a:12:34:56"
        )


@pytest.fixture
async def cisco_sim() -> AsyncIterator[object]:
    [sw] = await start_switches(1, "cisco_ios", ports=12, macs=[])
    yield sw
    await sw.stop()


async def test_manager_finds_by_snmp_then_configures_over_ssh(snmpsim: int, cisco_sim) -> None:  # type: ignore[no-untyped-def]
    sw = cisco_sim
    entry = SwitchEntry(
        name="tor-a3-01", type="cisco", host="127.0.0.1", port=sw.port, username=sw.username,
        password=sw.password, snmp_community=COMMUNITY, snmp_port=snmpsim,
    )  # fmt: skip
    m = SwitchManager(SwitchConfig(inventory=[entry], batch_window=0.01))
    res = await m.set_install_vlan("0c:c4:7a:12:34:56")
    await m.stop()
    assert res.port == "GigabitEthernet1/0/5"
    assert sw.ports["GigabitEthernet1/0/5"].access_vlan == 100
    assert not any("mac address-table" in c for c in sw.commands)  # the lookup went over SNMP
    # CLI sessions: one to read the found port's mode (uplink check), one for the change
    assert sw.sessions_opened == 2
