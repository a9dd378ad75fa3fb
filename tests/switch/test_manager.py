"""SwitchManager over real SSH to simulated switches: the workflow's path end to end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from regional_client.config.switch import SwitchConfig, SwitchEntry
from regional_client.core.audit import Audit
from regional_client.core.errors import (
    ConfigError,
    Conflict,
    NotFound,
    SwitchError,
    ValidationError,
)
from regional_client.core.metrics import Metrics
from regional_client.drivers.registry import SWITCH_DRIVERS
from regional_client.drivers.switch.base import PortConfig
from regional_client.drivers.switch.manager import SwitchManager
from regional_rack.switch_sim import SimSwitch, start_switches
from tests.switch.conftest import SERVER_MAC, sent_lines
from tests.switch.test_ssh_drivers import PORT, expected_sequence


def entry(sw: SimSwitch, name: str, **kw: object) -> SwitchEntry:
    return SwitchEntry(
        name=name,
        type=sw.vendor,
        host=sw.host,
        port=sw.port,
        username=sw.username,
        password=sw.password,
        install_vlan=100,
        production_vlan=200,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
async def manager(sim: SimSwitch, tmp_path: Path) -> AsyncIterator[SwitchManager]:
    cfg = SwitchConfig(inventory=[entry(sim, "tor1")], batch_window=0.05, timeout=10)
    m = SwitchManager(cfg, audit=Audit(tmp_path / "audit.jsonl", "t1"), metrics=Metrics("t1"))
    await m.start()
    yield m
    await m.stop()


def audit_lines(tmp_path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]


async def test_install_vlan_then_restore_exact_sequence(
    sim: SimSwitch, manager: SwitchManager, tmp_path: Path
) -> None:
    res = await manager.set_install_vlan(SERVER_MAC, sn="SN1")
    assert (res.switch, res.port) == ("tor1", PORT[sim.vendor])
    assert sim.ports[res.port].access_vlan == 100
    assert res.previous == PortConfig("access", (1,), None, "")
    back = await manager.restore(res.switch, res.port, res.previous, sn="SN1")
    assert back.applied.vlans == (1,) and sim.ports[res.port].access_vlan == 1
    # three sessions: find (CLI), change + read back, restore + read back; same lines as the
    # driver-level sequence, plus each session's own login setup and logout
    full = expected_sequence(sim.vendor)
    setup = full[: full.index(next(x for x in full if "mac" in x))]
    logout = full[-1]
    find, show = full[len(setup)], full[len(setup) + 1]
    conf100 = full[len(setup) + 2 : full.index(show, len(setup) + 2)]
    conf1 = [x.replace(" 100", " 1") for x in conf100]
    clear = SWITCH_DRIVERS.get(sim.vendor).profile.clear_description  # type: ignore[attr-defined]
    conf1.insert(next(i for i, x in enumerate(conf1) if x.endswith(" 1")) + 1, clear)
    assert sent_lines(sim) == [
        *setup, find, show, logout,
        *setup, show, *conf100, show, logout,
        *setup, show, *conf1, show, logout,
    ]  # fmt: skip
    recs = [r for r in audit_lines(tmp_path) if r["action"] == "switch.port.configure"]
    assert [r["result"] for r in recs] == ["ok", "ok"]
    assert recs[0]["commands"] == conf100[1:-1]  # the port's block, without mode changes
    assert recs[0]["sn"] == "SN1" and recs[0]["target"] == f"tor1/{res.port}"
    text = (tmp_path / "audit.jsonl").read_text()
    assert sim.password not in text.replace('"admin"', "")


async def test_failed_verification_restores_previous_vlan(
    sim: SimSwitch, manager: SwitchManager, tmp_path: Path
) -> None:
    port = PORT[sim.vendor]
    sim.ports[port].access_vlan = 30  # the port's production VLAN before the change
    sim.lie_on_readback = 1  # the read-back after the change reports the old state
    with pytest.raises(SwitchError) as e:
        await manager.configure(PortConfig("access", (100,)), switch="tor1", port=port)
    assert e.value.fields["restored"] is True
    assert "verification failed" in e.value.message
    assert sim.ports[port].access_vlan == 30
    rec = [r for r in audit_lines(tmp_path) if r["action"] == "switch.port.configure"][-1]
    assert rec["restored"] is True and rec["restore_commands"]
    assert rec["result"].startswith("verification failed")


async def test_refused_command_restores_previous(sim: SimSwitch, manager: SwitchManager) -> None:
    port = PORT[sim.vendor]
    sim.ports[port].access_vlan = 30
    sim.refuse.append(r"vlan 100$")
    with pytest.raises(SwitchError) as e:
        await manager.configure(PortConfig("access", (100,)), switch="tor1", port=port)
    assert e.value.fields["restored"] is True
    assert sim.ports[port].access_vlan == 30 and sim.ports[port].mode == "access"


async def test_batching_one_session_for_concurrent_changes(
    sim: SimSwitch, manager: SwitchManager
) -> None:
    ports = list(sim.ports)[:6]
    results = await asyncio.gather(
        *(manager.configure(PortConfig("access", (100 + i,)), switch="tor1", port=p)
          for i, p in enumerate(ports))
    )  # fmt: skip
    assert manager.sessions_opened == 1 and sim.sessions_opened == 1
    assert [sim.ports[p].access_vlan for p in ports] == [100 + i for i in range(6)]
    assert {r.batch_size for r in results} == {6}
    assert sim.max_concurrent_sessions == 1
    # The ports' configs were read from two whole-configuration listings (before, and to
    # verify after), not twelve per-port reads; and read right.
    whole = {"cisco_ios": "show running-config"}.get(sim.vendor, "display current-configuration")
    reads = [c for c in sim.commands if c.startswith(whole)]
    assert reads == [whole, whole], reads
    assert all((r.previous.mode, r.previous.vlans) == ("access", (1,)) for r in results)


async def test_one_refused_port_in_a_batch_does_not_sink_the_others(
    sim: SimSwitch, manager: SwitchManager
) -> None:
    ports = list(sim.ports)[:4]
    sim.refuse.append(r"vlan 102$")
    results = await asyncio.gather(
        *(manager.configure(PortConfig("access", (100 + i,)), switch="tor1", port=p)
          for i, p in enumerate(ports)),
        return_exceptions=True,
    )  # fmt: skip
    assert isinstance(results[2], SwitchError) and results[2].fields["restored"]
    assert [sim.ports[p].access_vlan for p in ports] == [100, 101, 1, 103]
    assert sim.sessions_opened == 1


async def test_same_port_twice_goes_in_order(sim: SimSwitch, manager: SwitchManager) -> None:
    port = PORT[sim.vendor]
    a = manager.configure(PortConfig("access", (100,)), switch="tor1", port=port)
    b = manager.configure(PortConfig("access", (200,)), switch="tor1", port=port)
    ra, rb = await asyncio.gather(a, b)
    assert ra.previous.vlans == (1,) and rb.previous.vlans == (100,)
    assert sim.ports[port].access_vlan == 200


async def test_injection_through_manager_reaches_nothing(
    sim: SimSwitch, manager: SwitchManager
) -> None:
    bad = [
        ({"mode": "access", "vlans": [100]}, "Gi1/0/1\nreload"),
        ({"mode": "access", "vlans": [100]}, "Gi1/0/1; reload"),
        ({"mode": "access", "vlans": [0]}, PORT[sim.vendor]),
        ({"mode": "access", "vlans": [4095]}, PORT[sim.vendor]),
        ({"mode": "access", "vlans": ["100 ; x"]}, PORT[sim.vendor]),
        ({"mode": "access", "vlans": [100], "description": "d" * 500}, PORT[sim.vendor]),
    ]
    for cfg, port in bad:
        with pytest.raises(ValidationError):
            await manager.configure(cfg, switch="tor1", port=port)
    with pytest.raises(ValidationError):
        await manager.find_port("0c:c4:7a:12:34:56; reload")
    with pytest.raises(ValidationError):
        await manager.port_status("Gi1/0/1\nreload")
    assert sim.commands == [] and sim.sessions_opened == 0


async def test_status_and_list_through_manager(sim: SimSwitch, manager: SwitchManager) -> None:
    ports = await manager.list_ports()
    assert len(ports) == len(sim.ports)
    st = await manager.port_status(PORT[sim.vendor])
    assert st.port == PORT[sim.vendor] and st.vlans == (1,)


async def test_inventory_of_three_vendors_finds_the_edge_port(tmp_path: Path) -> None:
    sims = [
        (await start_switches(1, v, ports=4, macs=[]))[0]
        for v in ("cisco_ios", "huawei_vrp", "h3c_comware")
    ]
    try:
        # the server sits on the H3C; the Cisco learned it on its uplink trunk
        sims[2].learn(SERVER_MAC, "GigabitEthernet1/0/3", 1)
        sims[0].ports["GigabitEthernet1/0/4"].mode = "trunk"
        sims[0].learn(SERVER_MAC, "GigabitEthernet1/0/4", 1)
        cfg = SwitchConfig(
            inventory=[entry(s, f"sw{i}") for i, s in enumerate(sims)], batch_window=0.01
        )
        m = SwitchManager(cfg)
        loc = await m.find_port(SERVER_MAC)
        assert (loc.switch, loc.port) == ("sw2", "GigabitEthernet1/0/3")
        res = await m.set_install_vlan(SERVER_MAC)
        assert sims[2].ports["GigabitEthernet1/0/3"].access_vlan == 100
        assert res.switch == "sw2"
        with pytest.raises(NotFound):
            await m.find_port("02:00:00:00:00:99")
        # seen only on an uplink trunk: refused (changing it would cut the rack off)
        sims[0].learn("0c:c4:7a:00:00:77", "GigabitEthernet1/0/4", 1)
        with pytest.raises(Conflict, match="non-access"):
            await m.set_install_vlan("0c:c4:7a:00:00:77")
        assert sims[0].ports["GigabitEthernet1/0/4"].mode == "trunk"
        loc = await m.find_port("0c:c4:7a:00:00:77", allow_trunk=True)
        assert loc.port == "GigabitEthernet1/0/4"
        with pytest.raises(ValidationError):
            await m.list_ports()  # several switches: the caller must name one
        await m.stop()
    finally:
        for s in sims:
            await s.stop()


async def test_encrypted_password_and_seed_form() -> None:
    [sw] = await start_switches(1, "huawei_vrp", ports=2)
    try:
        cfg = SwitchConfig(
            type="huawei",
            host=sw.host,
            port=sw.port,
            username="admin",
            password="enc:c2VjcmV0",
            batch_window=0.01,
        )
        with pytest.raises(ConfigError):
            SwitchManager(cfg)
        m = SwitchManager(cfg, decrypt=lambda v: "admin" if v == "enc:c2VjcmV0" else "?")
        assert m.names == ["default"]
        assert len(await m.list_ports()) == 2
        await m.stop()
    finally:
        await sw.stop()


def test_unknown_vendor_fails_at_start() -> None:
    cfg = SwitchConfig(inventory=[SwitchEntry(name="x", type="nokia_sros", host="127.0.0.1")])
    with pytest.raises(ConfigError, match="unknown switch vendor"):
        SwitchManager(cfg)


async def test_reads_and_changes_never_overlap_on_one_switch(
    sim: SimSwitch, manager: SwitchManager
) -> None:
    sim.command_delay = 0.002
    ports = list(sim.ports)[:3]
    await asyncio.gather(
        manager.list_ports(),
        *(manager.configure(PortConfig("access", (300,)), switch="tor1", port=p) for p in ports),
        manager.port_status(ports[0]),
        manager.find_port(SERVER_MAC),
    )
    assert sim.max_concurrent_sessions == 1
    assert [sim.ports[p].access_vlan for p in ports] == [300, 300, 300]


async def test_snmp_only_switch_takes_no_changes(sim: SimSwitch) -> None:
    e = entry(sim, "ro", protocol="snmp", snmp_community="public")
    m = SwitchManager(SwitchConfig(inventory=[e]))
    with pytest.raises(ValidationError, match="SNMP-only"):
        await m.configure(PortConfig("access", (100,)), switch="ro", port=PORT[sim.vendor])
    assert sim.commands == []


def test_registry_names_and_aliases() -> None:
    from regional_client.drivers.registry import SWITCH_DRIVERS as reg

    assert {"cisco_ios", "huawei_vrp", "h3c_comware", "arista_eos"} <= set(reg.available())
    for alias, name in [("Cisco", "cisco_ios"), ("huawei", "huawei_vrp"), ("H3C", "h3c_comware"),
                        ("hp_comware", "h3c_comware"), ("arista", "arista_eos")]:  # fmt: skip
        assert reg.get(alias) is reg.get(name)
        assert reg.get(alias).vendor == name
    assert reg.get("cisco").naming.types["gi"] == "GigabitEthernet"


async def test_same_port_three_times_keeps_order(sim: SimSwitch, manager: SwitchManager) -> None:
    port, other = PORT[sim.vendor], next(iter(sim.ports))
    results = await asyncio.gather(
        *(manager.configure(PortConfig("access", (v,)), switch="tor1", port=port)
          for v in (101, 102, 103)),
        manager.configure(PortConfig("access", (104,)), switch="tor1", port=other),
    )  # fmt: skip
    assert [r.previous.vlans for r in results[:3]] == [(1,), (101,), (102,)]
    assert sim.ports[port].access_vlan == 103 and sim.ports[other].access_vlan == 104


async def test_stop_finishes_in_flight_and_fails_queued(sim: SimSwitch) -> None:
    sim.command_delay = 0.01
    cfg = SwitchConfig(inventory=[entry(sim, "tor1")], batch_window=0.01, max_batch=1)
    m = SwitchManager(cfg)
    await m.start()
    ports = list(sim.ports)[:3]
    tasks = [asyncio.create_task(m.configure(PortConfig("access", (100,)), switch="tor1", port=p))
             for p in ports]  # fmt: skip
    for _ in range(2000):  # until the first batch's session is open (bounded)
        if sim.sessions_opened:
            break
        await asyncio.sleep(0.005)
    await m.stop()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert not isinstance(results[0], BaseException)  # the batch in flight completed
    assert sim.ports[ports[0]].access_vlan == 100
    assert all(isinstance(r, SwitchError) for r in results[1:])
    assert [sim.ports[p].access_vlan for p in ports[1:]] == [1, 1]


async def test_session_lost_mid_change_is_restored_in_a_new_session(
    sim: SimSwitch, tmp_path: Path
) -> None:
    port = PORT[sim.vendor]
    sim.ports[port].access_vlan = 30
    sim.drop_after.append(r"vlan 100$")  # applied, then the connection drops
    cfg = SwitchConfig(inventory=[entry(sim, "tor1")], batch_window=0.01, timeout=3)
    m = SwitchManager(cfg, audit=Audit(tmp_path / "audit.jsonl", "t1"))
    with pytest.raises(SwitchError) as e:
        await m.configure(PortConfig("access", (100,)), switch="tor1", port=port)
    await m.stop()
    assert e.value.fields["restored"] is True, e.value.message
    assert sim.ports[port].access_vlan == 30 and sim.sessions_opened == 2


async def test_unreachable_switch_fails_cleanly_and_is_audited(tmp_path: Path) -> None:
    [sw] = await start_switches(1, "cisco_ios", ports=2)
    await sw.stop()  # nothing listens there any more
    cfg = SwitchConfig(inventory=[entry(sw, "gone")], batch_window=0.01, timeout=3)
    m = SwitchManager(cfg, audit=Audit(tmp_path / "audit.jsonl", "t1"), metrics=Metrics("t1"))
    with pytest.raises(SwitchError):
        await m.configure(PortConfig("access", (100,)), switch="gone", port="Gi1/0/1", sn="SN9")
    await m.stop()
    [rec] = audit_lines(tmp_path)
    assert (rec["action"], rec["target"], rec["sn"], rec["commands"]) == (
        "switch.port.configure",
        "gone/GigabitEthernet1/0/1",
        "SN9",
        [],
    )
    assert rec["result"] != "ok"
