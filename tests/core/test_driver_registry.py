"""The one driver registry: names, aliases, entry points, and what each failure says."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from regional_client.core.errors import ConfigError
from regional_client.drivers import registry as reg
from regional_client.drivers.bmc.base import BmcDriver
from regional_client.drivers.bmc.ipmi import IpmiDriver
from regional_client.drivers.registry import BMC_DRIVERS, SWITCH_DRIVERS, DriverRegistry


def fresh(**builtin: str) -> DriverRegistry[BmcDriver]:
    return DriverRegistry(
        "BMC type", "regional_client.test_nothing_here",
        "regional_client.drivers.bmc.base:BmcDriver",
        builtin, key="bmc.protocol",
    )  # fmt: skip


def test_builtins_and_aliases() -> None:
    assert BMC_DRIVERS.get("IPMI") is IpmiDriver
    assert SWITCH_DRIVERS.get("Huawei") is SWITCH_DRIVERS.get("huawei_vrp")
    assert {"ipmi", "redfish"} <= set(BMC_DRIVERS.available())


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as e:
        SWITCH_DRIVERS.get("junos")
    assert "unknown switch vendor 'junos'" in e.value.message
    assert "cisco_ios" in e.value.message and e.value.fields["key"] == "switch.type"


def test_missing_dependency_names_the_package_to_install() -> None:
    r = fresh(x="regional_client_no_such_module.sub:Driver")
    with pytest.raises(ConfigError) as e:
        r.get("x")
    assert "cannot be loaded" in e.value.message
    assert e.value.message.endswith("fix: pip install regional_client_no_such_module")


def test_wrong_class_is_refused() -> None:
    r = fresh(x="regional_client.drivers.switch.cisco:CiscoIos")
    with pytest.raises(ConfigError, match="is not a BmcDriver subclass"):
        r.get("x")


def test_entry_point_overrides_and_names_its_distribution(monkeypatch) -> None:
    class Dist:
        name = "acme-bmc-drivers"

    good = EntryPoint("ipmi", "regional_client.drivers.bmc.ipmi:IpmiDriver", "g")
    broken = EntryPoint("acme", "acme_bmc_missing.driver:AcmeDriver", "g")
    object.__setattr__(broken, "dist", Dist())
    monkeypatch.setattr(reg, "entry_points", lambda group: [good, broken])
    r = fresh()
    assert r.available() == ["acme", "ipmi"]
    assert r.get("ipmi") is IpmiDriver
    with pytest.raises(ConfigError, match="fix: pip install acme-bmc-drivers"):
        r.get("acme")
