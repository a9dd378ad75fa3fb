"""Redfish: our driver against sushy-tools' emulator (``--fake``) on loopback.

State is checked through the emulator's own API (``SushyEmulator.system``), not our driver.
The fake driver applies power changes 1-11 s late, so the controller's read-after-write polls.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from regional_client.core.errors import BmcError, DriverAuthError, DriverTimeout
from regional_client.drivers.bmc.base import BmcTarget, BootDevice, BootSetting, PowerState
from tests.bmc.conftest import PASSWORD, USER
from tests.bmc.emulators import SushyEmulator

RF = {"redfish": {"scheme": "http"}, "power_timeout": 25, "poll_interval": 0.5}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SushyEmulator]:
    emu = SushyEmulator(tmp_path_factory.mktemp("sushy"), 8, USER, PASSWORD)
    emu.start()
    yield emu
    emu.stop()


_next = iter(range(8))


@pytest.fixture
def system(emulator: SushyEmulator) -> int:
    """A system index no other test has touched."""
    return next(_next)


def rf_target(emu: SushyEmulator, i: int, password: str = PASSWORD) -> BmcTarget:
    return BmcTarget(
        "127.0.0.1",
        USER,
        password,
        type="redfish",
        port=emu.port,
        sn=f"SN-RF{i}",
        system_id=emu.systems[i],
    )


async def test_power_on_off_reset_through_emulator(make_harness, emulator, system) -> None:
    h = make_harness(**RF)
    t = rf_target(emulator, system)
    assert await h.ctl.power_status(t) is PowerState.OFF
    r = await h.ctl.power_on(t)  # lands 1-11 s later: the controller polls
    assert r.changed and emulator.system(system)["PowerState"] == "On"
    assert not (await h.ctl.power_on(t)).changed

    r = await h.ctl.power_reset(t)
    assert r.changed and emulator.system(system)["PowerState"] == "On"

    r = await h.ctl.power_off(t)
    assert r.changed and emulator.system(system)["PowerState"] == "Off"
    await h.ctl.stop()


async def test_reset_of_off_system_powers_it_on(make_harness, emulator, system) -> None:
    h = make_harness(**RF)
    r = await h.ctl.power_reset(rf_target(emulator, system))
    assert r.note == "was off: powered on"
    assert emulator.system(system)["PowerState"] == "On"
    await h.ctl.stop()


async def test_boot_override_pxe_once_uefi_and_disk_legacy(make_harness, emulator, system) -> None:
    h = make_harness(**RF)
    t = rf_target(emulator, system)
    seen = await h.ctl.set_boot_device(t, "pxe", uefi=True)
    boot = emulator.system(system)["Boot"]
    assert boot["BootSourceOverrideTarget"] == "Pxe"
    assert boot["BootSourceOverrideMode"] == "UEFI"
    # the emulator stores Once as Continuous; accepted by default (documented quirk)
    assert boot["BootSourceOverrideEnabled"] == "Continuous"
    assert seen == BootSetting(BootDevice.PXE, persistent=True, uefi=True)

    seen = await h.ctl.set_boot_device(t, BootDevice.DISK, persistent=True, uefi=False)
    boot = emulator.system(system)["Boot"]
    assert (boot["BootSourceOverrideTarget"], boot["BootSourceOverrideMode"]) == ("Hdd", "Legacy")
    assert seen == BootSetting(BootDevice.DISK, persistent=True, uefi=False)
    assert (await h.ctl.get_boot_device(t)).device is BootDevice.DISK
    await h.ctl.stop()


async def test_once_stored_as_continuous_fails_when_strict(make_harness, emulator, system) -> None:
    h = make_harness(**{**RF, "redfish": {"scheme": "http", "accept_continuous_for_once": False}})
    t = rf_target(emulator, system)
    with pytest.raises(BmcError) as ei:
        await h.ctl.set_boot_device(t, "cdrom")
    assert t.name in str(ei.value) and "ignored" in str(ei.value)
    assert "cdrom (persistent" in str(ei.value)
    await h.ctl.stop()


async def test_unadvertised_boot_target_is_refused_without_retry(
    make_harness, emulator, system, json_log
) -> None:
    h = make_harness(**RF, retries=3)
    t = rf_target(emulator, system)
    with pytest.raises(BmcError) as ei:
        await h.ctl.set_boot_device(t, "bios")  # the emulator offers Pxe, Cd, Hdd only
    assert "BiosSetup not offered" in str(ei.value) and t.name in str(ei.value)
    assert not any('"bmc_retry"' in line for line in json_log.lines)
    await h.ctl.stop()


async def test_system_info(make_harness, emulator, system) -> None:
    h = make_harness(**RF)
    info = await h.ctl.system_info(rf_target(emulator, system))
    assert info.uuid == emulator.systems[system] and info.manufacturer == "Sushy Emulator"
    assert info.power_state is not None
    await h.ctl.stop()


async def test_wrong_password_is_auth_error(make_harness, emulator, json_log) -> None:
    h = make_harness(**RF, retries=2)
    bad = "Bad-" + PASSWORD[::-1]
    t = rf_target(emulator, 0, password=bad)
    with pytest.raises(DriverAuthError) as ei:
        await h.ctl.power_status(t)
    assert t.name in str(ei.value)
    assert not any('"bmc_retry"' in line for line in json_log.lines)
    for line in json_log.lines + h.audit_lines():
        assert PASSWORD not in line and bad not in line
    await h.ctl.stop()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung BMC web server)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield s.getsockname()[1]
    s.close()


async def test_hung_bmc_times_out_within_configured_timeout(make_harness, silent_port) -> None:
    h = make_harness(**RF, timeout=1.5, retries=0)
    t = BmcTarget("127.0.0.1", USER, PASSWORD, type="redfish", port=silent_port, sn="SN-HUNG")
    start = time.monotonic()
    with pytest.raises(DriverTimeout) as ei:
        await h.ctl.power_on(t)
    assert t.name in str(ei.value)
    assert time.monotonic() - start < 1.5 + 2.0
    rec = json.loads(h.audit_lines()[-1])
    assert rec["target"] == t.name and rec["sn"] == "SN-HUNG" and rec["result"] != "ok"
    await h.ctl.stop()


async def test_session_reuse_one_connection(make_harness, emulator) -> None:
    """Many calls to one BMC reuse one driver (and its kept-alive connection pool)."""
    h = make_harness(**RF)
    t = rf_target(emulator, 0)
    await asyncio.gather(*(h.ctl.power_status(t) for _ in range(5)))
    assert len(h.ctl._drivers) == 1
    drv = next(iter(h.ctl._drivers.values()))
    assert drv._client is not None
    await h.ctl.stop()
    assert drv._client is None


def test_emulator_log_has_no_password(emulator) -> None:
    assert PASSWORD not in Path(emulator.log_path).read_text()


@pytest.fixture(scope="module")
def tls_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SushyEmulator]:
    emu = SushyEmulator(tmp_path_factory.mktemp("sushy-tls"), 1, USER, PASSWORD, tls=True)
    emu.start()
    yield emu
    emu.stop()


async def test_tls_verification_is_configurable(make_harness, tls_emulator, json_log) -> None:
    t = rf_target(tls_emulator, 0)
    strict = make_harness(**{**RF, "redfish": {"scheme": "https"}, "retries": 2})
    with pytest.raises(BmcError, match="TLS certificate not trusted") as ei:
        await strict.ctl.power_status(t)
    assert t.name in str(ei.value)
    assert not any('"bmc_retry"' in line for line in json_log.lines)  # not worth retrying
    await strict.ctl.stop()

    pinned = make_harness(**{**RF, "redfish": {"ca_bundle": str(tls_emulator.cert)}})
    assert await pinned.ctl.power_status(t) is PowerState.OFF
    await pinned.ctl.stop()

    lax = make_harness(**{**RF, "redfish": {"verify_tls": False}})
    assert await lax.ctl.power_status(t) is PowerState.OFF
    await lax.ctl.stop()
