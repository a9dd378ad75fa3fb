"""The Cisco driver and the manager against fake-switches (a simulator nobody here wrote).

Started by :mod:`tests.switch.fake_switches_launcher` (patched for Python 3: ``enable`` with a
password, ``end``, free port). Used for the configure / read-back path; its Cisco model prints
nothing for ``show mac address-table``, so the manager is given the port.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from regional_client.config.switch import SwitchConfig, SwitchEntry
from regional_client.core.errors import SwitchError
from regional_client.drivers.switch.base import ConnectionParams, PortChange, PortConfig
from regional_client.drivers.switch.cisco import CiscoIos
from regional_client.drivers.switch.manager import SwitchManager
from tests.switch.fake_switches_launcher import FakeSwitches


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSwitches]:
    fs = FakeSwitches(username="netops", password="fake-pw", enable="en-secret")
    fs.start()
    yield fs
    fs.stop()


def params(fs: FakeSwitches, enable: str | None = None) -> ConnectionParams:
    return ConnectionParams(
        host="127.0.0.1", port=fs.port, username=fs.username, password=fs.password,
        enable_password=enable if enable is not None else fs.enable, timeout=10, name="fake",
    )  # fmt: skip


async def test_enable_configure_read_back(fake: FakeSwitches) -> None:
    d = CiscoIos(params(fake))
    await d.connect()
    before = await d.get_port_config("Fa0/3")
    assert before == PortConfig("access", (1,), None, "")
    await d.apply([PortChange("Fa0/3", PortConfig("access", (100,), None, "srv-0042"), before)])
    assert await d.get_port_config("FastEthernet0/3") == PortConfig(
        "access", (100,), None, "srv-0042"
    )
    want = PortConfig("trunk", (10, 11, 12, 20), 11, "")
    await d.apply([PortChange("FastEthernet0/3", want)])
    assert want.matches(await d.get_port_config("FastEthernet0/3"))
    await d.apply([PortChange("FastEthernet0/3", before, want)])
    assert (await d.get_port_config("FastEthernet0/3")).vlans == (1,)
    await d.disconnect()
    assert d.sent[:4] == ["enable", "terminal length 0", "terminal width 511",
                          "show running-config interface FastEthernet0/3"]  # fmt: skip
    assert "en-secret" not in d.sent  # the enable secret is written redacted, not recorded
    assert "end" in d.sent  # leaves configuration mode (patched into fake-switches)


async def test_manager_change_and_restore(fake: FakeSwitches) -> None:
    entry = SwitchEntry(
        name="fake", type="cisco", host="127.0.0.1", port=fake.port, username=fake.username,
        password=fake.password, enable_password=fake.enable, install_vlan=120, save_config=True,
    )  # fmt: skip
    m = SwitchManager(SwitchConfig(inventory=[entry], batch_window=0.01))
    res = await m.set_install_vlan(switch="fake", port="FastEthernet0/7")
    assert res.saved and res.applied.vlans == (120,) and res.previous.vlans == (1,)
    back = await m.restore("fake", "FastEthernet0/7", res.previous)
    assert back.applied.vlans == (1,)
    await m.stop()


async def test_wrong_enable_secret_fails(fake: FakeSwitches) -> None:
    d = CiscoIos(params(fake, enable="wrong"))
    with pytest.raises(SwitchError):
        await d.connect()
    await d.disconnect()
