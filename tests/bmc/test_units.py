"""Pure pieces: output parsers, Redfish payload model, verification rule, target validation."""

from __future__ import annotations

import pytest

from regional_client.config.bmc import BmcConfig
from regional_client.core.audit import Audit
from regional_client.core.errors import (
    BmcError,
    ConfigError,
    DriverAuthError,
    DriverTimeout,
    ValidationError,
)
from regional_client.core.metrics import Metrics
from regional_client.drivers.bmc import redfish_model as rm
from regional_client.drivers.bmc.base import BootDevice, BootSetting, PowerState
from regional_client.drivers.bmc.controller import BmcController, boot_honoured
from regional_client.drivers.bmc.ipmi import (
    IpmiDriver,
    classify_failure,
    parse_boot_flags,
    parse_key_values,
    parse_power_status,
)
from regional_client.drivers.bmc.redfish import RedfishDriver
from regional_client.drivers.registry import BMC_DRIVERS


def test_parse_power_and_boot_flags() -> None:
    assert parse_power_status("Chassis Power is on\n") is PowerState.ON
    with pytest.raises(BmcError):
        parse_power_status("garbage")
    out = "Boot parameter version: 1\nBoot parameter data: e004000000\n Boot Flags :\n"
    assert parse_boot_flags(out) == BootSetting(BootDevice.PXE, True, True)
    assert parse_boot_flags("Boot parameter data: 8008000000") == BootSetting(
        BootDevice.DISK, False, False
    )
    assert parse_boot_flags("Boot parameter data: 0000000000").device is BootDevice.NONE
    assert parse_boot_flags("Boot parameter data: 8018000000").device is BootDevice.BIOS
    assert parse_boot_flags("Boot parameter data: 8014000000").device is BootDevice.CDROM
    with pytest.raises(BmcError):
        parse_boot_flags("Boot parameter data: ")
    kv = parse_key_values("System GUID  : abc-def\nFirmware Revision : 1.00\nno colon\n")
    assert kv == {"System GUID": "abc-def", "Firmware Revision": "1.00"}


def test_classify_failure() -> None:
    err = "> RAKP 2 HMAC is invalid\nError: Unable to establish IPMI v2 / RMCP+ session\n"
    assert isinstance(classify_failure("b", "x", 1, err), DriverAuthError)
    err = "Get Auth Capabilities error\nError: Unable to establish IPMI v2 / RMCP+ session"
    e = classify_failure("ipmi://h:1", "x", 1, err)
    assert isinstance(e, DriverTimeout) and "ipmi://h:1" in e.message
    e = classify_failure("b", "chassis power reset", 1, "Set Chassis Power Control failed")
    assert type(e) is BmcError and "chassis power reset" in e.message


def test_boot_honoured_rule() -> None:
    once = BootSetting(BootDevice.PXE, False, True)
    assert boot_honoured(once, BootSetting(BootDevice.PXE, False, True), False)
    assert not boot_honoured(once, BootSetting(BootDevice.DISK, False, True), True)
    assert not boot_honoured(once, BootSetting(BootDevice.PXE, False, False), True)
    assert boot_honoured(once, BootSetting(BootDevice.PXE, False, None), False)  # mode unknown
    cont = BootSetting(BootDevice.PXE, True, True)
    assert not boot_honoured(once, cont, False)
    assert boot_honoured(once, cont, True)  # the Once->Continuous quirk, when allowed
    assert not boot_honoured(cont, once, True)  # never the other way round


def test_redfish_model() -> None:
    sysd = {
        "PowerState": "PoweringOn",
        "Boot": {
            "BootSourceOverrideEnabled": "Once",
            "BootSourceOverrideTarget": "Cd",
            "BootSourceOverrideMode": "Legacy",
            "BootSourceOverrideTarget@Redfish.AllowableValues": ["Pxe", "Hdd", "Cd"],
        },
        "Actions": {"#ComputerSystem.Reset": {"target": "/r", "@Redfish.ActionInfo": "/ai"}},
    }
    assert rm.power_state(sysd, "/s") is PowerState.OFF
    assert rm.boot_setting(sysd, "/s") == BootSetting(BootDevice.CDROM, False, False)
    assert rm.boot_patch(sysd, BootDevice.PXE, True, None, "b") == {
        "Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Continuous"}
    }
    with pytest.raises(BmcError, match="BiosSetup not offered"):
        rm.boot_patch(sysd, BootDevice.BIOS, False, None, "b")
    assert rm.reset_action(sysd, "/s") == ("/r", None)
    info = {"Parameters": [{"Name": "ResetType", "AllowableValues": ["GracefulRestart", "On"]}]}
    allowed = rm.action_info_values(info)
    assert rm.pick_reset_type("reset", allowed, "b") == "GracefulRestart"
    assert rm.pick_reset_type("on", None, "b") == "On"
    with pytest.raises(BmcError, match="no reset type for power off"):
        rm.pick_reset_type("off", allowed, "b")
    with pytest.raises(BmcError, match="2 systems"):
        rm.pick_system(["/a/1", "/a/2"], None, "b")
    assert rm.pick_system(["/a/1", "/a/2"], "2", "b") == "/a/2"
    with pytest.raises(BmcError, match="Members"):
        rm.members({"Members": [{}]}, "/c")
    body = {"error": {"@Message.ExtendedInfo": [{"Message": "Bad thing"}]}}
    assert rm.error_message(body) == "Bad thing"
    assert rm.boot_setting({"Boot": {"BootSourceOverrideEnabled": "Disabled"}}, "/s").device is (
        BootDevice.NONE
    )


def test_registry() -> None:
    assert BMC_DRIVERS.get("ipmi") is IpmiDriver
    assert BMC_DRIVERS.get("redfish") is RedfishDriver
    with pytest.raises(ConfigError, match="unknown BMC type 'snmp'"):
        BMC_DRIVERS.get("snmp")


@pytest.mark.parametrize(
    ("bmc", "msg"),
    [
        ({}, "no BMC address"),
        ({"ip": "-oProxyCommand=x", "password": "p"}, "invalid BMC address"),
        ({"ip": "10.0.0.1 ; rm", "password": "p"}, "invalid BMC address"),
        ({"ip": "10.0.0.1"}, "no BMC password"),
        ({"ip": "10.0.0.1", "password": "p", "username": "-x"}, "invalid BMC username"),
        ({"ip": "10.0.0.1", "password": "p", "port": "abc"}, "bmc.port"),
        ({"ip": "10.0.0.1", "password": "p", "port": 70000}, "bmc.port"),
    ],
)
def test_target_validation(bmc: dict, msg: str) -> None:
    ctl = BmcController(BmcConfig(), Metrics("t1"), Audit(None, "t1"))
    with pytest.raises(ValidationError, match=msg):
        ctl.target_for({"sn": "SN1", "bmc": bmc})


def test_unknown_type_in_task() -> None:
    ctl = BmcController(BmcConfig(), Metrics("t1"), Audit(None, "t1"))
    with pytest.raises(ConfigError, match="unknown BMC type"):
        ctl.target_for({"bmc": {"ip": "10.0.0.1", "password": "p", "type": "wol"}})


async def test_bad_boot_device_is_rejected_before_any_call() -> None:
    ctl = BmcController(BmcConfig(), Metrics("t1"), Audit(None, "t1"))
    t = ctl.target_for({"bmc": {"ip": "127.0.0.1", "password": "p"}})
    with pytest.raises(ValidationError, match="boot device must be one of"):
        await ctl.set_boot_device(t, "floppy")


def test_target_from_task_model() -> None:
    from regional_client.model.task import Task

    task = Task(sn="SN-M1", mac="52:54:00:00:00:01", bmc={"ip": "127.0.0.1", "password": "p"})
    ctl = BmcController(BmcConfig(protocol="redfish"), Metrics("t1"), Audit(None, "t1"))
    t = ctl.target_for(task)
    assert (t.sn, t.host, t.type, t.username, t.password) == (
        "SN-M1",
        "127.0.0.1",
        "redfish",
        "admin",
        "p",
    )
