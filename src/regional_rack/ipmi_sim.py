"""A multi-BMC IPMI simulator built on pyghmi's BMC server class (the way virtualbmc uses it).

One process (one thread, in fact) serves N simulated BMCs, each on its own UDP port on loopback.
We do not write the IPMI protocol: pyghmi's :class:`pyghmi.ipmi.bmc.Bmc` does RMCP+, RAKP
authentication and command dispatch; this module only holds each BMC's state and decides what a
command does to it. Clients are real ``ipmitool -I lanplus`` processes.

State per BMC (:class:`SimBmcState`): power, boot device with its *persistent* and *UEFI* flags,
counters (power resets, ons, offs), credentials, and two failure switches for tests:
``ignore_boot_changes`` (accept "set boot device" and keep the old one, as some BMCs do) and
``stall`` (answer nothing at all, like a BMC that hung).

Power is pluggable (:class:`PowerBackend`): the default keeps a boolean; the virtual rack, or a
BMC driving a QEMU VM, passes its own backend to start/stop a machine. Observers registered with
:meth:`SimBmc.add_listener` see every power action and boot-device change (e.g. "reset with PXE
boot pending" → start a simulated PXE client).

A "once" boot override is consumed by the next power-on/reset/cycle, as on real hardware;
``last_boot_device`` records what that boot used.

pyghmi's ``Bmc.listen(timeout=None)`` never reads its sockets: we run our own loop around
``Session.wait_for_rsp(timeout=...)`` with a short timeout so :meth:`IpmiSimulator.stop` returns
promptly.

Run standalone: ``python -m regional_rack.ipmi_sim --count 50`` prints one JSON line per
BMC (``{"name", "port", "username"}``), then ``{"ready": true}``, and serves until SIGTERM/SIGINT;
with ``--events`` it then prints one JSON line per power or boot-device event
(``{"index", "event", "boot", "resets"}``: how a virtual rack whose BMCs run in other processes
learns that a server was reset and from which device it boots). pyghmi's I/O thread reads every
socket of its process on each wake-up, so its cost grows with BMCs per process: large racks run
several such processes (see :class:`regional_rack.rack.VirtualRack` ``ipmi_processes``).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyghmi.ipmi.bmc as pyghmi_bmc
import pyghmi.ipmi.private.session as ipmisession

from regional_client.core.logs import get_logger

__all__ = [
    "BOOT_SELECTORS",
    "IpmiSimulator",
    "MemoryPower",
    "PowerBackend",
    "SimBmc",
    "SimBmcState",
]

_log = get_logger("ipmi_sim")


def _recvfrom_nowait(mysocket: Any, size: int) -> Any:
    """Replacement for pyghmi's ``_io_recvfrom``: one read that never blocks.

    pyghmi's version puts the socket in non-blocking mode and then reads, while its
    ``_io_sendto`` puts the same socket in blocking mode to send, from the other thread (the one
    answering requests). When the two interleave, the I/O thread's read blocks on an empty
    socket for good; it reads no other socket either, so every simulated BMC of the process
    stops answering ("no IPMI session could be established"), with every thread alive and
    idle. Seen in CI (the demo, the crash tests) and caught with py-spy in a hung demo.
    ``MSG_DONTWAIT`` makes the read non-blocking whatever mode the socket is in.
    """
    try:
        return mysocket.recvfrom(size, socket.MSG_DONTWAIT)
    except OSError:
        return None


ipmisession._io_recvfrom = _recvfrom_nowait

# IPMI boot flags (parameter 5) device selector, bits 5:2 of data byte 2 (IPMI v2.0 table 28-14).
BOOT_SELECTORS: dict[int, str] = {
    0: "none",
    1: "pxe",
    2: "disk",
    3: "safe",
    4: "diag",
    5: "cdrom",
    6: "bios",
    15: "floppy",
}
_SELECTOR_OF = {v: k for k, v in BOOT_SELECTORS.items()}
_CC_OK = 0x00
_CC_INVALID_FIELD = 0xCC
_CC_NOT_IN_STATE = 0xD5
_CC_PARAM_NOT_SUPPORTED = 0x80


@dataclass
class SimBmcState:
    """Everything a test may want to look at or flip on one simulated BMC."""

    name: str
    username: str
    password: str
    power_on: bool = False
    boot_device: str = "none"
    boot_persistent: bool = False
    boot_uefi: bool = False
    last_boot_device: str | None = None
    resets: int = 0
    """Power resets and cycles that actually rebooted a running machine."""
    power_ons: int = 0
    power_offs: int = 0
    ignore_boot_changes: bool = False
    stall: bool = False
    latency: float = 0.0
    """Seconds before a chassis action is answered: power status and control, boot flags read
    or written (one per ``ipmitool`` call; session setup, the probes ipmitool sends first and
    the set-in-progress bracket around boot flags are not delayed). Models a slow BMC without
    blocking the simulator's single I/O thread (a timer answers later)."""
    delayed: int = 0
    """Commands answered after ``latency``."""
    history: list[str] = field(default_factory=list)


class PowerBackend(Protocol):
    """What powers the simulated machine (a boolean, a QEMU process, a virtual rack node)."""

    def is_on(self, state: SimBmcState) -> bool: ...

    def act(self, state: SimBmcState, action: str) -> None:
        """Apply ``on``, ``off``, ``reset``, ``cycle`` or ``soft`` (already validated)."""


class MemoryPower:
    """The default backend: power is the ``power_on`` flag of the state."""

    def is_on(self, state: SimBmcState) -> bool:
        return state.power_on

    def act(self, state: SimBmcState, action: str) -> None:
        state.power_on = action != "off" and action != "soft"


Listener = Callable[[SimBmcState, str], None]


class SimBmc(pyghmi_bmc.Bmc):  # type: ignore[misc]
    """One simulated BMC: pyghmi handles the wire, this class the state."""

    def __init__(
        self,
        state: SimBmcState,
        port: int = 0,
        address: str = "127.0.0.1",
        backend: PowerBackend | None = None,
        lock: threading.Lock | None = None,
    ) -> None:
        super().__init__({state.username: state.password}, port=port, address=address)
        self.port = self.serversocket.getsockname()[1]
        self.state = state
        self.backend: PowerBackend = backend or MemoryPower()
        self.lock = lock or threading.Lock()
        self._listeners: list[Listener] = []
        self.mfgid = 0xA000  # arbitrary, shown by `ipmitool mc info`

    def add_listener(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def _emit(self, event: str) -> None:
        self.state.history.append(event)
        for fn in self._listeners:
            fn(self.state, event)

    # -- failure switches: a stalled BMC answers nothing, not even session setup ---------------
    def sessionless_data(self, data: Any, sockaddr: Any) -> None:
        if not self.state.stall:
            super().sessionless_data(data, sockaddr)

    def handle_raw_request(self, request: dict[str, Any], session: Any) -> None:
        if self.state.stall:
            return
        if self.state.latency > 0 and _is_chassis_action(request):
            self.state.delayed += 1
            answer = super().handle_raw_request
            timer = threading.Timer(self.state.latency, answer, (request, session))
            timer.daemon = True
            timer.start()
            return
        super().handle_raw_request(request, session)

    # -- power ----------------------------------------------------------------------------------
    def get_power_state(self) -> str:
        with self.lock:
            return "on" if self.backend.is_on(self.state) else "off"

    def _power(self, action: str) -> int:
        with self.lock:
            st = self.state
            was_on = self.backend.is_on(st)
            if action in ("reset", "cycle") and not was_on:
                return _CC_NOT_IN_STATE  # IPMI: reset/cycle of an off chassis is refused
            self.backend.act(st, action)
            now_on = self.backend.is_on(st)
            if action == "on" and not was_on:
                st.power_ons += 1
            if action in ("off", "soft") and was_on:
                st.power_offs += 1
            if action in ("reset", "cycle"):
                st.resets += 1
            if now_on and (action in ("reset", "cycle") or not was_on):
                self._consume_boot_once()
            self._emit(f"power:{action}")
        return _CC_OK

    def _consume_boot_once(self) -> None:
        st = self.state
        st.last_boot_device = st.boot_device
        if not st.boot_persistent:
            st.boot_device = "none"

    def power_on(self) -> int:
        return self._power("on")

    def power_off(self) -> int:
        return self._power("off")

    def power_reset(self) -> int:
        return self._power("reset")

    def power_cycle(self) -> int:
        return self._power("cycle")

    def power_shutdown(self) -> int:
        return self._power("soft")

    def get_system_guid(self) -> Any:
        return self.uuid

    def cold_reset(self) -> int:
        return _CC_OK

    # -- boot flags (parameter 5), with the persistent and EFI bits pyghmi's base ignores -------
    def set_system_boot_options(self, request: dict[str, Any], session: Any) -> None:
        data = request["data"]
        param = data[0] & 0x7F
        if param != 5:
            # 0 (set in progress), 3 (service partition), 4 (boot info ack): accepted, no state.
            session.send_ipmi_response()
            return
        if len(data) < 3:
            session.send_ipmi_response(code=_CC_INVALID_FIELD)
            return
        flags, selector = data[1], (data[2] >> 2) & 0x0F
        device = BOOT_SELECTORS.get(selector)
        if device is None:
            session.send_ipmi_response(code=_CC_INVALID_FIELD)
            return
        with self.lock:
            st = self.state
            if not st.ignore_boot_changes:
                if flags & 0x80:
                    st.boot_device = device
                    st.boot_persistent = bool(flags & 0x40)
                    st.boot_uefi = bool(flags & 0x20)
                else:  # "valid" bit clear: the override is cancelled
                    st.boot_device = "none"
                    st.boot_persistent = False
            self._emit(f"bootdev:{device}")
        session.send_ipmi_response()

    def get_system_boot_options(self, request: dict[str, Any], session: Any) -> None:
        param = request["data"][0] & 0x7F
        if param != 5:
            session.send_ipmi_response(code=_CC_PARAM_NOT_SUPPORTED)
            return
        with self.lock:
            st = self.state
            valid = st.boot_device != "none"
            flags = (0x80 if valid else 0) | (0x40 if st.boot_persistent else 0)
            flags |= 0x20 if st.boot_uefi else 0
            selector = _SELECTOR_OF.get(st.boot_device, 0)
        session.send_ipmi_response(data=[1, 5, flags, selector << 2, 0, 0, 0])


def _is_chassis_action(request: dict[str, Any]) -> bool:
    """Power status/control, boot options read, or the boot flags (parameter 5) written."""
    if request.get("netfn") != 0:
        return False
    cmd, data = request.get("command"), request.get("data") or [0]
    return cmd in (0x01, 0x02, 0x09) or (cmd == 0x08 and data[0] & 0x7F == 5)


class IpmiSimulator:
    """N simulated BMCs on loopback, served by one background thread.

    >>> sim = IpmiSimulator.create(3, password="pw")   # doctest: +SKIP
    >>> sim.start(); sim.bmcs[0].port; sim.stop()       # doctest: +SKIP
    """

    def __init__(self, poll_interval: float = 0.2) -> None:
        self.bmcs: list[SimBmc] = []
        self.poll_interval = poll_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lock = threading.Lock()

    @classmethod
    def create(
        cls,
        count: int,
        username: str = "admin",
        password: str = "password",
        address: str = "127.0.0.1",
        backend: PowerBackend | None = None,
    ) -> IpmiSimulator:
        sim = cls()
        for i in range(count):
            sim.add(SimBmcState(f"bmc{i}", username, password), address=address, backend=backend)
        return sim

    def add(
        self,
        state: SimBmcState,
        port: int = 0,
        address: str = "127.0.0.1",
        backend: PowerBackend | None = None,
    ) -> SimBmc:
        if not _is_loopback(address):
            raise ValueError(f"simulated BMCs listen on loopback only, not {address}")
        _ensure_io_thread()
        _anchor_socket()
        bmc = SimBmc(state, port=port, address=address, backend=backend, lock=self.lock)
        self.bmcs.append(bmc)
        _wake_io_thread()  # select on the new socket now, not at the I/O thread's next timeout
        return bmc

    def remove(self, bmc: SimBmc) -> None:
        """Stop serving one BMC (its port is closed)."""
        self.bmcs.remove(bmc)
        _release_sockets([bmc.serversocket])

    def by_port(self, port: int) -> SimBmc:
        for b in self.bmcs:
            if b.port == port:
                return b
        raise KeyError(port)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="ipmi-sim", daemon=True)
            self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                ipmisession.Session.wait_for_rsp(timeout=self.poll_interval)
            except Exception as e:  # one bad packet must not silence every BMC of this sim
                _log.warning("IPMI simulator: packet handling failed", action="ipmi_sim_error",
                             error=repr(e))  # fmt: skip

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        _release_sockets([b.serversocket for b in self.bmcs])
        self.bmcs.clear()

    def __enter__(self) -> IpmiSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


RETIRE_SECONDS = 10.0
"""How long a released BMC socket stays open (unread) before it is closed."""

_retired: list[tuple[float, socket.socket]] = []
_retired_lock = threading.Lock()


def _release_sockets(socks: list[socket.socket]) -> None:
    """Unhook BMC sockets from pyghmi's shared I/O thread; close them only much later.

    pyghmi's I/O thread selects on a module-level socket list and then reads every socket of
    it. If a socket it still holds is closed, ``select`` or ``setblocking`` raises in that
    thread, it dies, and every simulated BMC of the process stops answering ("no IPMI session
    could be established" for all later calls: a CI run saw one crash test fail that way and
    every workflow test after it). Waking the thread and waiting a moment is not enough on a
    loaded machine. So: take the sockets out of the list, wake the thread, and close them at a
    later release once they have been out of the list for ``RETIRE_SECONDS``.
    """
    for sock in socks:
        ipmisession.Session.bmc_handlers.pop(sock, None)
        if sock in ipmisession.iosockets:
            ipmisession.iosockets.remove(sock)
    _wake_io_thread()
    now = time.monotonic()
    with _retired_lock:
        due = [s for at, s in _retired if now - at >= RETIRE_SECONDS]
        _retired[:] = [(at, s) for at, s in _retired if now - at < RETIRE_SECONDS]
        _retired.extend((now, s) for s in socks)
    for sock in due:
        sock.close()


def _ensure_io_thread() -> None:
    """Restart pyghmi's I/O thread if it died (pyghmi never does): a simulator added after that
    would otherwise never answer, with no error anywhere."""
    t = ipmisession.iothread
    if t is None or t.is_alive():
        return
    _log.warning("IPMI simulator: pyghmi's I/O thread had died; starting a new one",
                 action="ipmi_sim_io_restart")  # fmt: skip
    ipmisession.iothread = None
    ipmisession.iothreadready = False
    global _anchor
    _anchor = None  # its socket is still listed; a new one comes with the new thread


_anchor: socket.socket | None = None


def _anchor_socket() -> socket.socket:
    """A socket that stays in pyghmi's select list for the life of the process.

    pyghmi's I/O thread only notices sockets added or removed when its ``select`` returns; with
    an empty list it would sleep for minutes. A datagram to this socket wakes it at any time.
    """
    global _anchor
    if _anchor is None:
        addrinfo = socket.getaddrinfo("127.0.0.1", 0, socket.AF_INET, socket.SOCK_DGRAM)[0]
        _anchor = ipmisession.Session._assignsocket(addrinfo)
    return _anchor


def _wake_io_thread() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"\x00", _anchor_socket().getsockname())  # not IPMI: read and dropped


def _is_loopback(address: str) -> bool:
    try:
        infos = socket.getaddrinfo(address, None)
    except OSError:
        return False
    return all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Serve N simulated IPMI BMCs on loopback")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--username", default="admin")
    ap.add_argument("--password-file", help="file holding the BMC password (default: password)")
    ap.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    ap.add_argument(
        "--events",
        action="store_true",
        help="after the ready line, print one JSON line per power or boot-device event",
    )
    args = ap.parse_args(argv)
    password = "password"
    if args.password_file:
        with open(args.password_file, encoding="utf-8") as fh:
            password = fh.read().strip()
    sim = IpmiSimulator.create(args.count, args.username, password, args.address)
    out = threading.Lock()

    def emit(msg: dict[str, Any]) -> None:
        with out:
            sys.stdout.write(json.dumps(msg) + "\n")
            sys.stdout.flush()

    for i, b in enumerate(sim.bmcs):
        b.state.latency = args.latency
        if args.events:

            def on_event(st: SimBmcState, ev: str, i: int = i) -> None:
                emit({"index": i, "event": ev, "boot": st.last_boot_device, "resets": st.resets})

            b.add_listener(on_event)
        print(json.dumps({"name": b.state.name, "port": b.port, "username": args.username}))
    print(json.dumps({"ready": True}), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    sim.start()
    done.wait()
    sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
