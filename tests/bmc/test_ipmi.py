"""IPMI: real ipmitool against the pyghmi-based simulator on loopback."""

from __future__ import annotations

import asyncio
import glob
import json
import os
import re
import time
from pathlib import Path

import pytest

from regional_client.core.errors import BmcError, DriverAuthError, DriverTimeout
from regional_client.drivers.bmc.base import BootDevice, BootSetting, PowerState
from regional_client.drivers.bmc.ipmi import IpmiDriver
from regional_client.drivers.registry import BMC_DRIVERS
from regional_rack.ipmi_sim import SimBmc
from tests.bmc.conftest import PASSWORD, ipmi_target


async def test_power_on_off_reset_change_simulator_state(make_harness, sim_bmc: SimBmc) -> None:
    h = make_harness()
    t = ipmi_target(sim_bmc)
    assert await h.ctl.power_status(t) is PowerState.OFF

    r = await h.ctl.power_on(t)
    assert r.changed and r.state is PowerState.ON
    assert sim_bmc.state.power_on and sim_bmc.state.power_ons == 1

    again = await h.ctl.power_on(t)  # already on: nothing sent to the machine
    assert not again.changed and again.note == "already on"
    assert sim_bmc.state.power_ons == 1 and sim_bmc.state.resets == 0

    r = await h.ctl.power_reset(t)
    assert r.changed and sim_bmc.state.resets == 1 and sim_bmc.state.power_on

    r = await h.ctl.power_off(t)
    assert r.changed and not sim_bmc.state.power_on and sim_bmc.state.power_offs == 1
    assert not (await h.ctl.power_off(t)).changed
    assert sim_bmc.state.power_offs == 1


async def test_reset_of_powered_off_server_powers_it_on(make_harness, sim_bmc: SimBmc) -> None:
    h = make_harness()
    r = await h.ctl.power_reset(ipmi_target(sim_bmc))
    assert r.changed and r.note == "was off: powered on"
    assert sim_bmc.state.power_on and sim_bmc.state.power_ons == 1
    assert sim_bmc.state.resets == 0


async def test_power_cycle(make_harness, sim_bmc: SimBmc) -> None:
    h = make_harness()
    t = ipmi_target(sim_bmc)
    await h.ctl.power_on(t)
    r = await h.ctl.power_cycle(t)
    assert r.state is PowerState.ON
    assert sim_bmc.state.power_offs == 1 and sim_bmc.state.power_ons == 2
    assert [e for e in sim_bmc.state.history if e.startswith("power:")] == [
        "power:on",
        "power:off",
        "power:on",
    ]


async def test_boot_device_pxe_once_then_disk_persistent(make_harness, sim_bmc: SimBmc) -> None:
    h = make_harness()
    t = ipmi_target(sim_bmc)
    seen = await h.ctl.set_boot_device(t, "pxe")
    assert seen == BootSetting(BootDevice.PXE, persistent=False, uefi=False)
    st = sim_bmc.state
    assert (st.boot_device, st.boot_persistent, st.boot_uefi) == ("pxe", False, False)

    # the once override is used by the next boot, then gone
    await h.ctl.power_reset(t)
    assert st.last_boot_device == "pxe" and st.boot_device == "none"
    assert (await h.ctl.get_boot_device(t)).device is BootDevice.NONE

    seen = await h.ctl.set_boot_device(t, BootDevice.DISK, persistent=True, uefi=True)
    assert seen == BootSetting(BootDevice.DISK, persistent=True, uefi=True)
    assert (st.boot_device, st.boot_persistent, st.boot_uefi) == ("disk", True, True)
    await h.ctl.power_reset(t)
    assert st.boot_device == "disk"  # persistent survives the boot


async def test_boot_device_keeps_uefi_flag_when_not_given(make_harness, sim_bmc: SimBmc) -> None:
    h = make_harness()
    t = ipmi_target(sim_bmc)
    await h.ctl.set_boot_device(t, "bios", uefi=True)
    seen = await h.ctl.set_boot_device(t, "cdrom")
    assert seen == BootSetting(BootDevice.CDROM, persistent=False, uefi=True)
    assert sim_bmc.state.boot_uefi


async def test_system_info(make_harness, sim_bmc: SimBmc) -> None:
    h = make_harness()
    info = await h.ctl.system_info(ipmi_target(sim_bmc))
    assert info.uuid and info.uuid.lower() == str(sim_bmc.uuid).lower()
    assert info.firmware_version == "1.00"
    assert info.power_state is PowerState.OFF


async def test_ignored_boot_override_is_a_failure_naming_the_bmc(
    make_harness, sim_bmc: SimBmc
) -> None:
    h = make_harness(verify_attempts=3)
    sim_bmc.state.ignore_boot_changes = True
    t = ipmi_target(sim_bmc)
    with pytest.raises(BmcError) as ei:
        await h.ctl.set_boot_device(t, "pxe")
    assert t.name in str(ei.value) and "ignored" in str(ei.value)
    assert ei.value.fields["device"] == t.name
    assert sim_bmc.state.history.count("bootdev:pxe") == 3  # re-issued, bounded
    assert (
        h.metric(
            "regional_client_bmc_operation_failures_total",
            operation="set_boot_device",
            reason="bmc_error",
        )
        == 1
    )
    rec = json.loads(h.audit_lines()[-1])
    assert rec["result"].startswith(f"BMC {t.name}") and rec["action"] == "bmc.set_boot_device"


async def test_wrong_password_is_auth_error_without_retries(
    make_harness, sim_bmc: SimBmc, json_log
) -> None:
    h = make_harness(retries=3)
    t = ipmi_target(sim_bmc, password="not-the-password")
    with pytest.raises(DriverAuthError) as ei:
        await h.ctl.power_status(t)
    assert t.name in str(ei.value) and "credentials refused" in str(ei.value)
    assert not any('"bmc_retry"' in line for line in json_log.lines)


async def test_stalled_bmc_times_out_within_configured_timeout(
    make_harness, sim_bmc: SimBmc
) -> None:
    # ipmitool would retransmit for ~10 s; the per-call timeout (1.5 s) must cut it short.
    h = make_harness(timeout=1.5, retries=0, ipmi={"retransmits": 9, "retransmit_timeout": 1})
    sim_bmc.state.stall = True
    t = ipmi_target(sim_bmc)
    start = time.monotonic()
    with pytest.raises(DriverTimeout) as ei:
        await h.ctl.power_on(t)
    elapsed = time.monotonic() - start
    assert t.name in str(ei.value)
    assert elapsed < 1.5 + 2.0, f"gave up after {elapsed:.1f}s"
    assert not _ipmitool_pids(sim_bmc.port), "the timed-out ipmitool was not killed"
    assert (
        h.metric(
            "regional_client_bmc_operation_failures_total",
            operation="power_on",
            reason="driver_timeout",
        )
        == 1
    )


async def test_cancelled_call_kills_its_ipmitool(make_harness, sim_bmc: SimBmc) -> None:
    """A workflow cancelled mid-call (task deleted, shutdown) leaves no ipmitool behind."""
    h = make_harness(timeout=30, retries=0, ipmi={"retransmits": 9, "retransmit_timeout": 1})
    sim_bmc.state.stall = True
    call = asyncio.create_task(h.ctl.power_status(ipmi_target(sim_bmc)))
    for _ in range(100):
        if _ipmitool_pids(sim_bmc.port):
            break
        await asyncio.sleep(0.05)
    assert _ipmitool_pids(sim_bmc.port), "ipmitool never started"
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    for _ in range(100):
        if not _ipmitool_pids(sim_bmc.port):
            break
        await asyncio.sleep(0.05)
    assert not _ipmitool_pids(sim_bmc.port), "the cancelled call's ipmitool still runs"


async def test_nobody_listening_is_timeout_after_bounded_retries(make_harness, json_log) -> None:
    h = make_harness(timeout=5, retries=1, ipmi={"retransmits": 1, "retransmit_timeout": 1})
    from regional_client.drivers.bmc.base import BmcTarget

    t = BmcTarget("127.0.0.1", "admin", PASSWORD, port=_free_udp_port(), sn="SN-X")
    with pytest.raises(DriverTimeout) as ei:
        await h.ctl.power_status(t)
    assert str(ei.value).startswith(f"BMC {t.name}: no")
    assert sum('"bmc_retry"' in line for line in json_log.lines) == 1


async def test_password_never_in_argv_environ_logs_or_audit(
    make_harness, sim_bmc: SimBmc, json_log
) -> None:
    """Sample every process's cmdline and environ while ipmitool runs a slow (stalled) call."""
    h = make_harness(timeout=4, retries=0, ipmi={"retransmits": 2, "retransmit_timeout": 1})
    sim_bmc.state.stall = True
    t = ipmi_target(sim_bmc)
    leaks: list[str] = []
    seen_pids: set[int] = set()
    children_seen: list[int] = []
    pw_args: list[bytes] = []
    needle = PASSWORD.encode()

    async def sample() -> None:
        while True:
            seen_pids.update(_ipmitool_pids(sim_bmc.port))
            kids = _children(os.getpid())
            children_seen.extend(kids)
            for pid in kids:
                for what in ("cmdline", "environ"):
                    if needle in _read_proc(pid, what):
                        leaks.append(f"{pid}/{what}")
                args = _read_proc(pid, "cmdline").split(b"\0")
                if b"-f" in args[:-1]:
                    pw_args.append(args[args.index(b"-f") + 1])
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    with pytest.raises(DriverTimeout):
        await h.ctl.power_on(t)
    sampler.cancel()
    assert seen_pids, "no ipmitool process was observed: the test proved nothing"
    assert seen_pids & set(children_seen), "ipmitool was not seen as our child"
    assert not leaks
    # the password came through an inherited pipe, never a file on disk
    assert pw_args and all(re.fullmatch(rb"/dev/fd/\d+", a) for a in pw_args), pw_args
    # a successful call too, then check every log line and audit record
    sim_bmc.state.stall = False
    await h.ctl.power_on(t)
    assert json_log.lines and h.audit_lines()
    for line in json_log.lines + h.audit_lines():
        assert PASSWORD not in line


def test_command_line_has_no_password(sim_bmc: SimBmc) -> None:
    drv = IpmiDriver(ipmi_target(sim_bmc), None, 5)
    argv = drv.command("/tmp/x/pw", "chassis", "power", "status")
    assert PASSWORD not in " ".join(argv)
    assert argv[argv.index("-f") + 1] == "/tmp/x/pw" and argv[argv.index("-C") + 1] == "3"


class _CountingIpmi(IpmiDriver):
    """The real IPMI driver, counting how many of its calls run at the same time."""

    running = 0
    peak = 0

    async def get_power_status(self) -> PowerState:
        cls = type(self)
        cls.running += 1
        cls.peak = max(cls.peak, cls.running)
        try:
            await asyncio.sleep(0.05)  # widen the window so overlaps are visible
            return await super().get_power_status()
        finally:
            cls.running -= 1


async def test_concurrency_cap(make_harness, sim_bmcs: list[SimBmc], monkeypatch) -> None:
    monkeypatch.setitem(BMC_DRIVERS.builtin, "counting", f"{__name__}:_CountingIpmi")
    monkeypatch.setattr(BMC_DRIVERS, "_cache", {})
    h = make_harness(max_concurrent=2)
    targets = [
        ipmi_target(b, sn=f"SN{i}").__class__(
            "127.0.0.1", "admin", PASSWORD, type="counting", port=b.port, sn=f"SN{i}"
        )
        for i, b in enumerate(sim_bmcs)
    ]
    states = await asyncio.gather(*(h.ctl.power_status(t) for t in targets * 2))
    assert all(s is PowerState.OFF for s in states)
    assert _CountingIpmi.peak == 2
    assert h.metric("regional_client_bmc_operations_total", operation="power_status") == 16


def _ipmitool_pids(port: int) -> list[int]:
    pids = []
    for d in glob.glob("/proc/[0-9]*"):
        try:
            argv = Path(d, "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"ipmitool") and str(port).encode() in argv:
            pids.append(int(d.rsplit("/", 1)[1]))
    return pids


def _children(ppid: int) -> list[int]:
    """Every process whose parent is ``ppid`` (ipmitool and anything else we started)."""
    out = []
    for d in glob.glob("/proc/[0-9]*"):
        stat = _read_proc(int(d.rsplit("/", 1)[1]), "stat")
        fields = stat.rsplit(b")", 1)[-1].split()
        if len(fields) > 1 and int(fields[1]) == ppid:
            out.append(int(d.rsplit("/", 1)[1]))
    return out


def _read_proc(pid: int, what: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{what}").read_bytes()
    except OSError:
        return b""


def _free_udp_port() -> int:
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
