"""Arista eAPI driver over HTTPS (self-signed cert, loopback) against the eAPI simulator."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import httpx
import pytest

from regional_client.config.switch import SwitchConfig, SwitchEntry
from regional_client.core.errors import (
    CommandFailed,
    DriverAuthError,
    SwitchError,
    ValidationError,
)
from regional_client.drivers.switch.arista import AristaEapi
from regional_client.drivers.switch.base import ConnectionParams, PortChange, PortConfig
from regional_client.drivers.switch.manager import SwitchManager
from regional_rack.arista_sim import AristaSim
from tests.switch.conftest import SERVER_MAC


@pytest.fixture
async def eos() -> AsyncIterator[AristaSim]:
    sim = AristaSim(ports_count=8)
    sim.learn(SERVER_MAC, "Ethernet5")
    await sim.start()
    yield sim
    await sim.stop()


def params(sim: AristaSim, **kw: object) -> ConnectionParams:
    assert sim.certfile is not None  # its self-signed certificate, pinned: TLS stays verified
    p = ConnectionParams(host=sim.host, port=sim.port, username=sim.username,
                         password=sim.password, timeout=10, name="eos1",
                         ca_bundle=str(sim.certfile))  # fmt: skip
    for k, v in kw.items():
        setattr(p, k, v)
    return p


async def test_find_set_readback_restore(eos: AristaSim) -> None:
    d = AristaEapi(params(eos))
    await d.connect()
    loc = await d.find_port_by_mac(SERVER_MAC)
    assert loc is not None and (loc.port, loc.vlan) == ("Ethernet5", 1)
    before = await d.get_port_config("Et5")
    await d.apply([PortChange("Ethernet5", PortConfig("access", (100,)), before)])
    assert (await d.get_port_config("Ethernet5")).vlans == (100,)
    await d.apply([PortChange("Ethernet5", before)])
    assert eos.ports["Ethernet5"].access_vlan == 1
    await d.disconnect()
    assert eos.commands == [
        "enable", "show version",
        "enable", "show mac address-table address 0cc4.7a12.3456",
        "enable", "show interfaces Ethernet5 switchport", "show interfaces Ethernet5 status",
        "enable", "configure", "interface Ethernet5", "switchport mode access",
        "switchport access vlan 100", "end",
        "enable", "show interfaces Ethernet5 switchport", "show interfaces Ethernet5 status",
        "enable", "configure", "interface Ethernet5", "switchport mode access",
        "switchport access vlan 1", "no description", "end",
    ]  # fmt: skip
    assert d.sent == eos.commands


async def test_trunk_status_list_save(eos: AristaSim) -> None:
    d = AristaEapi(params(eos))
    await d.connect()
    want = PortConfig("trunk", (10, 20, 21, 22), 20, "hv-07")
    await d.configure_port("Ethernet2", want)
    assert want.matches(await d.get_port_config("Ethernet2"))
    eos.ports["Ethernet3"].link_up = False
    ports = await d.list_ports()
    assert [p.status for p in ports].count("down") == 1 and len(ports) == 8
    st = await d.get_port_status("Ethernet2")
    assert (st.mode, st.vlans, st.speed, st.description) == ("trunk", (10, 20, 21, 22), "10G",
                                                            "hv-07")  # fmt: skip
    await d.save_config()
    assert eos.saves == 1
    await d.disconnect()


async def test_refused_line_names_port(eos: AristaSim) -> None:
    eos.refuse.append(r"vlan 101$")
    d = AristaEapi(params(eos))
    await d.connect()
    with pytest.raises(CommandFailed) as e:
        await d.apply([PortChange("Ethernet1", PortConfig("access", (100,))),
                       PortChange("Ethernet2", PortConfig("access", (101,)))])  # fmt: skip
    assert e.value.fields["port"] == "Ethernet2" and e.value.fields["applied"] == ["Ethernet1"]
    await d.disconnect()


async def test_tls_is_real_and_verifiable(eos: AristaSim) -> None:
    assert eos.certfile is not None
    ctx = ssl.create_default_context(cafile=str(eos.certfile))
    async with httpx.AsyncClient(verify=ctx) as c:
        r = await c.post(f"https://127.0.0.1:{eos.port}/command-api", json={}, auth=("x", "y"))
    assert r.status_code == 401
    with pytest.raises(SwitchError):  # verified by default: not trusted without its CA
        await AristaEapi(params(eos, ca_bundle=None)).connect()
    assert ConnectionParams(host="x").verify_tls  # the default
    d = AristaEapi(params(eos, ca_bundle=None, verify_tls=False))  # an explicit opt-out works
    await d.connect()
    await d.disconnect()


async def test_bad_password_and_injection(eos: AristaSim) -> None:
    with pytest.raises(DriverAuthError):
        await AristaEapi(params(eos, password="nope")).connect()
    d = AristaEapi(params(eos))
    for bad in ("Ethernet1\nreload", "Ethernet1; reload", "Et1 | json"):
        with pytest.raises(ValidationError):
            await d.apply([PortChange(bad, PortConfig("access", (100,)))])
    with pytest.raises(ValidationError):
        await d.apply([PortChange("Ethernet1", PortConfig("access", (4095,)))])
    assert eos.commands == []


async def test_manager_rollback_over_eapi(eos: AristaSim) -> None:
    eos.ports["Ethernet5"].access_vlan = 30
    entry = SwitchEntry(name="eos1", type="arista", protocol="rest", host=eos.host,
                        port=eos.port, username=eos.username, password=eos.password,
                        ca_bundle=str(eos.certfile))  # fmt: skip
    m = SwitchManager(SwitchConfig(inventory=[entry], batch_window=0.01))
    eos.lie_on_readback = 1
    with pytest.raises(SwitchError) as e:
        await m.set_install_vlan(SERVER_MAC)
    assert e.value.fields["restored"] is True
    assert eos.ports["Ethernet5"].access_vlan == 30
    res = await m.set_install_vlan(SERVER_MAC)
    assert res.previous.vlans == (30,) and eos.ports["Ethernet5"].access_vlan == 100
    await m.stop()


async def test_rack_helpers_and_workdir(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sim = AristaSim(ports_count=4, workdir=tmp_path / "eos")
    sim.learn(SERVER_MAC, sim.port_name(2))
    sim.mutate(sim.port_name(2), access_vlan=200)
    await sim.start()
    try:
        assert (tmp_path / "eos" / "cert.pem").exists()
        d = AristaEapi(params(sim))
        await d.connect()
        assert (await d.get_port_config("Ethernet2")).vlans == (200,)
        await d.disconnect()
    finally:
        await sim.stop()
