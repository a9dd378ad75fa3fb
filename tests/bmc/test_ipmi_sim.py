"""The simulator itself: pluggable power, listeners, restart within a process, CLI mode."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from regional_client.core.errors import BmcError
from regional_client.drivers.bmc.base import BmcTarget, PowerState
from regional_rack.ipmi_sim import IpmiSimulator, SimBmc, SimBmcState
from tests.bmc.conftest import PASSWORD, USER, ipmi_target

SRC = str(Path(__file__).resolve().parents[2] / "src")


class RecordingPower:
    """A backend like a QEMU-driving BMC would have: it owns the machine's power."""

    def __init__(self) -> None:
        self.on = True
        self.actions: list[str] = []

    def is_on(self, state: SimBmcState) -> bool:
        return self.on

    def act(self, state: SimBmcState, action: str) -> None:
        self.actions.append(action)
        self.on = action not in ("off", "soft")


async def test_pluggable_backend_and_listener(make_harness, ipmi_sim: IpmiSimulator) -> None:
    backend = RecordingPower()
    events: list[tuple[str, str, str]] = []
    bmc = ipmi_sim.add(SimBmcState("qemu0", USER, PASSWORD), backend=backend)
    bmc.add_listener(lambda st, ev: events.append((st.name, ev, st.boot_device)))
    try:
        h = make_harness()
        t = ipmi_target(bmc)
        assert await h.ctl.power_status(t) is PowerState.ON  # the backend says so
        await h.ctl.set_boot_device(t, "pxe")
        await h.ctl.power_reset(t)
        assert backend.actions == ["reset"]
        # the listener saw the reset with PXE pending (a virtual rack would start a PXE client)
        assert ("qemu0", "bootdev:pxe", "pxe") in events
        assert events[-1][:2] == ("qemu0", "power:reset")
        assert bmc.state.last_boot_device == "pxe"
    finally:
        ipmi_sim.remove(bmc)


async def test_second_simulator_starts_and_stops_without_harming_the_first(
    make_harness, sim_bmc: SimBmc
) -> None:
    h = make_harness()
    for _ in range(2):
        with IpmiSimulator.create(2, USER, PASSWORD) as other:
            await h.ctl.power_on(ipmi_target(other.bmcs[1]))
            assert other.bmcs[1].state.power_on
    await h.ctl.power_on(ipmi_target(sim_bmc))  # the session-wide one still answers
    assert sim_bmc.state.power_on


def test_refuses_non_loopback() -> None:
    sim = IpmiSimulator()
    with pytest.raises(ValueError, match="loopback"):
        sim.add(SimBmcState("x", USER, PASSWORD), address="0.0.0.0")


@pytest.fixture
def sim_process(tmp_path: Path) -> Iterator[list[dict[str, Any]]]:
    """``python -m regional_rack.ipmi_sim --count 3``: what it printed until ready."""
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD)
    argv = [sys.executable, "-m", "regional_rack.ipmi_sim", "--count", "3"]
    proc = subprocess.Popen(
        [*argv, "--password-file", str(pw)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        msg = json.loads(line)
        if msg.get("ready"):
            break
        lines.append(msg)
    yield lines
    proc.terminate()
    assert proc.wait(10) == 0
    proc.stdout.close()


async def test_cli_serves_n_bmcs_in_one_process(make_harness, sim_process) -> None:
    assert len(sim_process) == 3
    assert all(PASSWORD not in json.dumps(m) for m in sim_process)
    h = make_harness()
    for m in sim_process:
        t = BmcTarget("127.0.0.1", USER, PASSWORD, port=m["port"])
        assert (await h.ctl.power_on(t)).changed


class IgnoringPower:
    """A machine whose BMC accepts power-on but ignores the first ``n`` of them."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.on = False
        self.requests = 0

    def is_on(self, state: SimBmcState) -> bool:
        return self.on

    def act(self, state: SimBmcState, action: str) -> None:
        self.requests += 1
        if self.requests > self.n:
            self.on = action not in ("off", "soft")


@pytest.mark.parametrize(("ignored", "ok"), [(1, True), (5, False)])
async def test_power_change_not_applied_is_reissued_once_then_reported(
    make_harness, ipmi_sim: IpmiSimulator, ignored: int, ok: bool
) -> None:
    backend = IgnoringPower(ignored)
    bmc = ipmi_sim.add(SimBmcState("deaf0", USER, PASSWORD), backend=backend)
    try:
        h = make_harness(power_timeout=1.0, poll_interval=0.1)
        t = ipmi_target(bmc)
        if ok:
            assert (await h.ctl.power_on(t)).state is PowerState.ON
        else:
            with pytest.raises(BmcError, match="power on accepted but the power state is still"):
                await h.ctl.power_on(t)
        assert backend.requests == 2  # the command, and one re-issue half-way
    finally:
        ipmi_sim.remove(bmc)


async def test_latency_delays_commands_without_blocking_other_bmcs(make_harness, sim_bmcs) -> None:
    import time

    h = make_harness(timeout=10)
    slow, fast = sim_bmcs[0], sim_bmcs[1]
    slow.state.latency = 0.5
    t0 = time.monotonic()
    slow_call = asyncio.create_task(h.ctl.power_status(ipmi_target(slow)))
    await asyncio.sleep(0.05)
    await h.ctl.power_status(ipmi_target(fast))
    fast_done = time.monotonic() - t0
    await slow_call
    slow_done = time.monotonic() - t0
    assert slow_done >= 0.5  # the command answer waited
    assert fast_done < slow_done  # the other BMC was answered meanwhile
    # One delayed answer per BMC call: session setup and ipmitool's probes are not delayed,
    # nor the set-in-progress bracket of a boot device change.
    assert slow.state.delayed == 1
    await h.ctl.set_boot_device(ipmi_target(slow), "pxe")  # read the EFI bit, set, read back
    assert slow.state.delayed == 1 + 3


def test_released_sockets_leave_the_io_list_at_once_and_close_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Closing a socket pyghmi's I/O thread may still hold kills that thread (and every BMC of
    the process with it): a released socket is unlisted now and closed at a later release."""
    import pyghmi.ipmi.private.session as ipmisession

    from regional_rack import ipmi_sim as mod

    sim = IpmiSimulator()
    first = sim.add(SimBmcState("r1", USER, PASSWORD))
    second = sim.add(SimBmcState("r2", USER, PASSWORD))
    s1, s2 = first.serversocket, second.serversocket
    sim.remove(first)
    assert s1 not in ipmisession.iosockets and s1.fileno() != -1  # unlisted, still open
    monkeypatch.setattr(mod, "RETIRE_SECONDS", 0.0)
    sim.remove(second)  # the next release closes what has been unlisted long enough
    assert s1.fileno() == -1 and s2 not in ipmisession.iosockets


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_a_dead_pyghmi_io_thread_is_restarted(make_harness, sim_bmc: SimBmc) -> None:
    """pyghmi never restarts its I/O thread. If it died (a closed socket in its select list),
    the next simulator started in the process brings it back, and older BMCs answer again."""
    import socket

    import pyghmi.ipmi.private.session as ipmisession

    from regional_rack import ipmi_sim as mod

    h = make_harness()
    assert await h.ctl.power_status(ipmi_target(sim_bmc)) is PowerState.OFF
    io = ipmisession.iothread
    bad = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bad.close()
    ipmisession.iosockets.append(bad)  # the thread dies on it: EBADF, as in the CI run
    mod._wake_io_thread()
    for _ in range(200):
        if not io.is_alive():
            break
        await asyncio.sleep(0.05)
    ipmisession.iosockets.remove(bad)
    assert not io.is_alive()
    sim = IpmiSimulator()
    later = sim.add(SimBmcState("later", USER, PASSWORD))
    sim.start()
    try:
        assert ipmisession.iothread is not io and ipmisession.iothread.is_alive()
        assert await h.ctl.power_status(ipmi_target(later)) is PowerState.OFF
        assert await h.ctl.power_status(ipmi_target(sim_bmc)) is PowerState.OFF
    finally:
        sim.stop()


def test_io_reads_never_block_whatever_the_socket_mode() -> None:
    """pyghmi's sender flips a BMC socket to blocking mode from another thread; its I/O
    thread's read must still return at once on an empty socket (else every BMC goes silent)."""
    import socket
    import time

    import pyghmi.ipmi.private.session as ipmisession

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.setblocking(True)  # what pyghmi's _io_sendto leaves behind
        t0 = time.monotonic()
        assert ipmisession._io_recvfrom(s, 3000) is None
        assert time.monotonic() - t0 < 1
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.sendto(b"ping", s.getsockname())
            for _ in range(100):
                got = ipmisession._io_recvfrom(s, 3000)
                if got is not None:
                    break
                time.sleep(0.01)
        assert got is not None and got[0] == b"ping"
