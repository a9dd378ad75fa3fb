"""SSH drivers over real SSH against the device simulator: exact command sequences, parsing of
device-shaped output, refusals and injection attempts stopped before any byte is sent."""

from __future__ import annotations

from pathlib import Path

import asyncssh
import pytest

from regional_client.core.errors import (
    CommandFailed,
    DriverAuthError,
    SwitchError,
    ValidationError,
)
from regional_client.drivers.registry import SWITCH_DRIVERS
from regional_client.drivers.switch.base import PortChange, PortConfig, SwitchDriver
from regional_client.drivers.switch.hostkeys import EtcdHostKeys, MemoryHostKeys
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from regional_rack.switch_sim import SimSwitch
from tests.switch.conftest import SERVER_MAC, params_for, sent_lines

PORT = {
    "cisco_ios": "GigabitEthernet1/0/5",
    "huawei_vrp": "GigabitEthernet0/0/5",
    "h3c_comware": "GigabitEthernet1/0/5",
}
MAC_SPELLING = {
    "cisco_ios": "0cc4.7a12.3456",
    "huawei_vrp": "0cc4-7a12-3456",
    "h3c_comware": "0cc4-7a12-3456",
}


def expected_sequence(vendor: str) -> list[str]:
    """find port by MAC, read its config, set access VLAN 100, read back, restore, read back."""
    port, mac = PORT[vendor], MAC_SPELLING[vendor]
    if vendor == "cisco_ios":
        show = f"show running-config interface {port}"
        setup = ["terminal length 0", "terminal width 511"]

        def conf(v):
            return [
                "configure terminal",
                f"interface {port}",
                "switchport mode access",
                f"switchport access vlan {v}",
                "end",
            ]

        find, logout = f"show mac address-table address {mac}", "exit"
    else:
        show = f"display current-configuration interface {port}"
        setup = ["screen-length 0 temporary" if vendor == "huawei_vrp" else "screen-length disable"]
        kw = "port default vlan" if vendor == "huawei_vrp" else "port access vlan"

        def conf(v):
            return [
                "system-view",
                f"interface {port}",
                "port link-type access",
                f"{kw} {v}",
                "quit",
                "quit",
            ]

        find, logout = f"display mac-address {mac}", "quit"
    return [*setup, find, show, *conf(100), show, *conf(1), show, logout]


async def test_find_set_readback_restore_exact_sequence(sim: SimSwitch) -> None:
    drv = SWITCH_DRIVERS.get(sim.vendor)(params_for(sim))
    await drv.connect()
    loc = await drv.find_port_by_mac(SERVER_MAC)
    assert loc is not None and loc.port == PORT[sim.vendor]
    before = await drv.get_port_config(loc.port)
    assert before == PortConfig("access", (1,), None, "")
    await drv.apply([PortChange(loc.port, PortConfig("access", (100,)), before)])
    assert sim.ports[loc.port].access_vlan == 100
    assert (await drv.get_port_config(loc.port)).vlans == (100,)
    await drv.apply([PortChange(loc.port, PortConfig("access", (1,)), None)])
    assert (await drv.get_port_config(loc.port)).vlans == (1,)
    await drv.disconnect()
    assert sim.ports[loc.port].access_vlan == 1
    assert sent_lines(sim) == expected_sequence(sim.vendor)
    assert drv.sent == sent_lines(sim)


async def test_trunk_and_description_round_trip(sim: SimSwitch, driver: SwitchDriver) -> None:
    await driver.connect()
    port = PORT[sim.vendor]
    want = PortConfig("trunk", (10, 11, 12, 20), 11, "srv-0042 rack A3")
    await driver.configure_port(port, want)
    got = await driver.get_port_config(port)
    assert want.matches(got)
    p = sim.ports[port]
    assert (p.mode, sorted(p.trunk_vlans), p.native_vlan) == ("trunk", [10, 11, 12, 20], 11)
    assert p.description == "srv-0042 rack A3"
    # and back to access: the trunk lines are undone first where the vendor needs it
    await driver.configure_port(port, PortConfig("access", (200,), description=""))
    got = await driver.get_port_config(port)
    assert got == PortConfig("access", (200,), None, "")


async def test_status_and_list(sim: SimSwitch, driver: SwitchDriver) -> None:
    sim.ports[PORT[sim.vendor]].link_up = False
    await driver.connect()
    ports = await driver.list_ports()
    assert [p.port for p in ports] == list(sim.ports)
    st = {p.port: p.status for p in ports}
    assert st[PORT[sim.vendor]] == "down"
    assert list(st.values()).count("up") == len(sim.ports) - 1
    one = await driver.get_port_status(PORT[sim.vendor])
    assert (one.status, one.mode, one.vlans) == ("down", "access", (1,))


async def test_unknown_mac_is_none(sim: SimSwitch, driver: SwitchDriver) -> None:
    await driver.connect()
    assert await driver.find_port_by_mac("02:00:00:00:00:01") is None


async def test_refused_command_raises_with_port(sim: SimSwitch, driver: SwitchDriver) -> None:
    sim.refuse.append(r"vlan 100$")
    await driver.connect()
    port = PORT[sim.vendor]
    with pytest.raises(CommandFailed) as e:
        await driver.apply([PortChange(port, PortConfig("access", (100,)))])
    assert e.value.fields["port"] == port
    assert sim.ports[port].access_vlan == 1


async def test_save_config(sim: SimSwitch, driver: SwitchDriver) -> None:
    await driver.connect()
    await driver.save_config()
    assert sim.saves == 1


async def test_bad_password(sim: SimSwitch) -> None:
    p = params_for(sim)
    p.password = "wrong"
    with pytest.raises(DriverAuthError):
        await SWITCH_DRIVERS.get(sim.vendor)(p).connect()
    assert sim.commands == []


@pytest.mark.parametrize(
    ("port", "config"),
    [
        ("Gi1/0/1\nreload", PortConfig("access", (100,))),
        ("GE0/0/1\nreboot", PortConfig("access", (100,))),
        ("GigabitEthernet1/0/5; ", PortConfig("access", (100,))),
        ("GigabitEthernet1/0/5", PortConfig("access", (0,))),
        ("GigabitEthernet1/0/5", PortConfig("access", (4095,))),
        ("GigabitEthernet1/0/5", PortConfig("access", ("100 ; x",))),  # type: ignore[arg-type]
        ("GigabitEthernet1/0/5", PortConfig("access", (100,), description="x" * 500)),
        ("GigabitEthernet1/0/5", PortConfig("access", (100,), description="a\nreload")),
    ],
)
async def test_injection_rejected_before_any_byte(
    sim: SimSwitch, driver: SwitchDriver, port: str, config: PortConfig
) -> None:
    with pytest.raises(ValidationError):
        await driver.apply([PortChange(port, config)])
    with pytest.raises(ValidationError):
        await driver.get_port_config(port) if "\n" in port or ";" in port else (
            await driver.find_port_by_mac("0c:c4:7a:12:34:56\nreload")
        )
    assert sim.commands == [] and sim.sessions_opened == 0


async def test_host_key_pinned_on_first_use_and_checked_before_the_password(
    sim: SimSwitch, tmp_path: Path
) -> None:
    """First contact learns the key without logging in and pins it; a switch answering with
    another key on the same name (a man in the middle, a swapped box) is refused during the
    handshake: it never receives the password. known_hosts files are checked the same way."""
    pins = MemoryHostKeys()
    p = params_for(sim)
    p.host_key_pins = pins
    drv = SWITCH_DRIVERS.get(sim.vendor)(p)
    await drv.connect()
    await drv.disconnect()
    pinned = await pins.get("sw1")
    assert pinned is not None and pinned.startswith("ssh-ed25519 ")
    assert sim.password_attempts == 1  # the key was fetched without any authentication
    impostor = SimSwitch(vendor=sim.vendor, ports_count=8,
                         host_key=asyncssh.generate_private_key("ssh-ed25519"))  # fmt: skip
    await impostor.start()
    try:
        q = params_for(impostor)  # same switch name "sw1": its pin applies
        q.host_key_pins = pins
        with pytest.raises(SwitchError, match="host key does not match"):
            await SWITCH_DRIVERS.get(sim.vendor)(q).connect()
        assert impostor.password_attempts == 0 and impostor.commands == []
        # A known_hosts file naming the real key refuses the impostor too, accepts the switch.
        kh = tmp_path / "known_hosts"
        kh.write_text(f"[127.0.0.1]:{impostor.port} {pinned}\n[127.0.0.1]:{sim.port} {pinned}\n")
        q.host_key_pins, q.ssh_known_hosts = None, str(kh)
        with pytest.raises(SwitchError, match="host key"):
            await SWITCH_DRIVERS.get(sim.vendor)(q).connect()
        assert impostor.password_attempts == 0
        p.host_key_pins, p.ssh_known_hosts = None, str(kh)
        ok = SWITCH_DRIVERS.get(sim.vendor)(p)
        await ok.connect()
        await ok.disconnect()
    finally:
        await impostor.stop()


async def test_etcd_pins_first_instance_wins(etcd_store: EtcdStore, keys: Keys) -> None:
    a = EtcdHostKeys(etcd_store, keys.regional_prefix + "switch_host_keys/")
    b = EtcdHostKeys(etcd_store, keys.regional_prefix + "switch_host_keys/")
    assert await a.pin("sw9", "10.0.0.9", "ssh-ed25519 AAAAfirst") == "ssh-ed25519 AAAAfirst"
    assert await b.pin("sw9", "10.0.0.9", "ssh-ed25519 AAAAother") == "ssh-ed25519 AAAAfirst"
    assert await b.get("sw9") == "ssh-ed25519 AAAAfirst"
