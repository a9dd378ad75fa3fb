"""Simulated Cisco IOS / Huawei VRP / H3C Comware switches speaking real SSH (asyncssh).

Why a simulator: no real switch OS runs on this machine, and fake-switches (the only ready-made
one) has no Huawei/H3C model and no MAC table. Each :class:`SimSwitch` keeps per-port state (mode,
access/trunk VLANs, native VLAN, description, admin and link state) and a MAC table, answers the
``show``/``display`` commands with output shaped like real captures (see :mod:`.switch_sim_cli`),
and records every line it receives in :attr:`SimSwitch.commands`, so tests assert exact
sequences. Two knobs serve rollback tests: :attr:`SimSwitch.refuse` (regexes of commands the
device answers with its error text and does not apply) and :attr:`SimSwitch.lie_on_readback`
(how many configuration reads after a change report the port as it was *before* the change).

The virtual rack starts many of them at once on loopback with :func:`start_switches`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import asyncssh

from regional_rack.switch_sim_cli import ALL_VLANS, CLI_CLASSES, Session, VendorCli

_HOST_KEY: list[asyncssh.SSHKey] = []

PORT_NAMES = {
    "cisco_ios": "GigabitEthernet1/0/{i}",
    "huawei_vrp": "GigabitEthernet0/0/{i}",
    "h3c_comware": "GigabitEthernet1/0/{i}",
}
HOSTNAMES = {"cisco_ios": "sw-cisco", "huawei_vrp": "HUAWEI", "h3c_comware": "H3C"}


@dataclass
class SimPort:
    name: str
    mode: str = "access"
    access_vlan: int = 1
    trunk_vlans: frozenset[int] = ALL_VLANS
    native_vlan: int = 1
    description: str = ""
    admin_up: bool = True
    link_up: bool = True


@dataclass
class SimSwitch:
    """One simulated switch. Call :meth:`start` (binds 127.0.0.1, a free port) and :meth:`stop`."""

    vendor: str = "cisco_ios"
    ports_count: int = 48
    hostname: str = ""
    username: str = "admin"
    password: str = "admin"
    host: str = "127.0.0.1"
    port: int = 0
    ports: dict[str, SimPort] = field(default_factory=dict)
    mac_table: list[tuple[str, int, str]] = field(default_factory=list)
    """(``aa:bb:cc:dd:ee:ff``, VLAN, canonical port name)."""
    commands: list[str] = field(default_factory=list)
    refuse: list[str] = field(default_factory=list)
    lie_on_readback: int = 0
    drop_after: list[str] = field(default_factory=list)
    """Regexes: the matching line is applied, then the session is cut without an answer
    (each regex fires once) — a switch rebooting or a link dropping mid-change."""
    command_delay: float = 0.0
    """Seconds to wait before answering each line (models a slow device CLI)."""
    login_delay: float = 0.0
    """Seconds before the first prompt of a session (a switch CPU's slow login)."""
    sessions_opened: int = 0
    saves: int = 0
    host_key: Any = None
    """Its own SSH host key (default: one key shared by every simulator of the process)."""
    password_attempts: int = 0
    """Passwords received (a client that refuses the host key must send none)."""
    _before: dict[str, SimPort] = field(default_factory=dict, repr=False)
    _server: Any = field(default=None, repr=False)
    _cli: VendorCli | None = field(default=None, repr=False)
    _busy: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def __post_init__(self) -> None:
        self.hostname = self.hostname or HOSTNAMES[self.vendor]
        self._cli = CLI_CLASSES[self.vendor](self)
        if not self.ports:
            trunk_default = ALL_VLANS if self.vendor == "cisco_ios" else frozenset({1})
            for i in range(1, self.ports_count + 1):
                name = PORT_NAMES[self.vendor].format(i=i)
                self.ports[name] = SimPort(name, trunk_vlans=trunk_default)
        self.concurrent_sessions = 0
        self.max_concurrent_sessions = 0

    # -- state ---------------------------------------------------------------------------------

    def lookup_port(self, name: str) -> SimPort | None:
        want = name.lower()
        for p in self.ports.values():
            if p.name.lower() == want or self._cli_short(p.name).lower() == want:
                return p
        return None

    def _cli_short(self, name: str) -> str:
        assert self._cli is not None
        return self._cli.short_name(name)

    def mutate(self, port: str, **changes: Any) -> None:
        """Change a port's state (the CLI's config lines call this; so may a test or the rack)."""
        p = self.ports[port]
        self._before.setdefault(port, replace(p))
        for k, v in changes.items():
            setattr(p, k, v)

    def read_port(self, name: str) -> SimPort | None:
        """A configuration read: truthful unless :attr:`lie_on_readback` asks for a stale one."""
        p = self.lookup_port(name)
        if p is not None and self.lie_on_readback > 0 and p.name in self._before:
            self.lie_on_readback -= 1
            stale = self._before.pop(p.name)
            return stale
        if p is not None:
            self._before.pop(p.name, None)
        return p

    def learn(self, mac: str, port: str, vlan: int | None = None) -> None:
        p = self.ports[port]
        self.mac_table = [e for e in self.mac_table if e[0] != mac]
        self.mac_table.append((mac.lower(), vlan or p.access_vlan, port))

    def port_name(self, i: int) -> str:
        return PORT_NAMES[self.vendor].format(i=i)

    # -- one CLI line ----------------------------------------------------------------------------

    def handle_line(self, session: Session, line: str) -> str:
        assert self._cli is not None
        self.commands.append(line)
        if any(re.search(rx, line) for rx in self.refuse):
            return self._cli.refuse(line)
        return self._cli.execute(session, line)

    def prompt(self, session: Session) -> str:
        assert self._cli is not None
        return self._cli.prompt(session)

    # -- SSH server ------------------------------------------------------------------------------

    async def start(self) -> SimSwitch:
        if not _HOST_KEY:
            _HOST_KEY.append(asyncssh.generate_private_key("ssh-ed25519"))
        sw = self

        class _Server(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                sw.password_attempts += 1
                return username == sw.username and password == sw.password

        self._server = await asyncssh.create_server(
            _Server,
            self.host,
            self.port,
            server_host_keys=[self.host_key] if self.host_key is not None else _HOST_KEY,
            process_factory=self._session,
            line_editor=False,
            encoding="utf-8",
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            # Bounded: a client that keeps its session open must not hold the stop up.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    async def _session(self, process: asyncssh.SSHServerProcess) -> None:
        """Echo input like a device terminal, run whole lines, print the prompt after each."""
        self.sessions_opened += 1
        self.concurrent_sessions += 1
        self.max_concurrent_sessions = max(self.max_concurrent_sessions, self.concurrent_sessions)
        s = Session()
        out = process.stdout
        try:
            assert self._cli is not None
            if self.login_delay:
                await asyncio.sleep(self.login_delay)
            banner = self._cli.banner()
            out.write(("\r\n" + banner if banner else "") + "\r\n" + self.prompt(s))
            buf = ""
            while not s.closed:
                chunk = await process.stdin.read(4096)
                if not chunk:
                    break
                for ch in chunk:
                    if ch in "\r\n":
                        if ch == "\n" and buf == "" and getattr(s, "_cr", False):
                            s._cr = False  # type: ignore[attr-defined]
                            continue
                        s._cr = ch == "\r"  # type: ignore[attr-defined]
                        await self._run_line(s, buf, out)
                        buf = ""
                        if s.closed:
                            break
                    else:
                        buf += ch
                        out.write(ch)
            if buf:
                self.commands.append(buf)  # a last line cut short by the client closing
        except (
            asyncssh.BreakReceived,
            asyncssh.TerminalSizeChanged,
            BrokenPipeError,
            ConnectionError,
            asyncssh.DisconnectError,
        ):
            pass
        finally:
            self.concurrent_sessions -= 1
            process.exit(0)

    async def _run_line(self, s: Session, line: str, out: Any) -> None:
        if self.command_delay:
            await asyncio.sleep(self.command_delay)
        text = self.handle_line(s, line)
        hit = [rx for rx in self.drop_after if re.search(rx, line)]
        if hit:
            self.drop_after = [rx for rx in self.drop_after if rx not in hit]
            s.closed = True
            return
        body = "\r\n" + text.replace("\n", "\r\n") if text else ""
        out.write(body + ("" if s.closed else "\r\n" + self.prompt(s)))


async def start_switches(
    count: int,
    vendor: str = "cisco_ios",
    ports: int = 48,
    macs: Iterable[tuple[str, int]] | None = None,
    **kw: Any,
) -> list[SimSwitch]:
    """Start ``count`` switches on 127.0.0.1 (free ports). ``macs``: (mac, port index 1..n) for
    switch 0; by default every port has learned ``52:54:00:SS:PP:PP`` (switch, port numbers)."""
    out = []
    for n in range(count):
        sw = SimSwitch(vendor=vendor, ports_count=ports, **kw)
        if macs is not None and n == 0:
            for mac, idx in macs:
                sw.learn(mac, sw.port_name(idx))
        elif macs is None:
            for i in range(1, ports + 1):
                sw.learn(f"52:54:00:{n:02x}:{i >> 8:02x}:{i & 0xFF:02x}", sw.port_name(i))
        out.append(await sw.start())
    return out


__all__ = ["SimPort", "SimSwitch", "start_switches"]
