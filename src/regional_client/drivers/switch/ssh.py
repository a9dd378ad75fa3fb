"""SSH CLI driver on scrapli 1.x (asyncssh transport) for the vendor profiles in :mod:`.cli`.

scrapli does the channel work (prompt matching, privilege levels, ``configure terminal`` /
``system-view`` and back); this module only sequences commands, checks each response against the
profile's failure strings and hands output to the pure parsers. Every line sent is appended to
``self.sent`` for the audit record. Passwords go to asyncssh in memory, never to a command line.
Why scrapli 1.x rather than scrapli 2.x or netmiko: see ``docs/switch.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from typing import Any, ClassVar

import asyncssh
from scrapli import AsyncScrapli
from scrapli.exceptions import (
    ScrapliAuthenticationFailed,
    ScrapliConnectionError,
    ScrapliConnectionNotOpened,
    ScrapliException,
    ScrapliTimeout,
)

from regional_client.core.errors import (
    CommandFailed,
    DriverAuthError,
    DriverTimeout,
    ProvisionError,
    SwitchError,
)
from regional_client.drivers.switch import cli, validate
from regional_client.drivers.switch.base import (
    MacLocation,
    PortChange,
    PortConfig,
    PortStatus,
    SwitchDriver,
)
from regional_client.drivers.switch.hostkeys import known_hosts_for


class SshCliDriver(SwitchDriver):
    """A switch reached over SSH; subclasses set :attr:`profile` (data) and nothing else."""

    profile: ClassVar[cli.CliProfile]

    def __init__(self, params: Any) -> None:
        super().__init__(params)
        self._conn: Any = None

    # -- session ---------------------------------------------------------------------------

    def _make(self, p: Any, known_hosts: Any) -> Any:
        # The host key is checked by asyncssh during the handshake, before the password is
        # sent (scrapli's auth_strict_key would check it only after logging in).
        return AsyncScrapli(
            platform=self.profile.scrapli_platform,
            host=p.host,
            port=p.port or 22,
            auth_username=p.username,
            auth_password=p.password or "",
            auth_secondary=p.enable_password or "",
            auth_strict_key=False,
            transport="asyncssh",
            transport_options={
                "asyncssh": {"login_timeout": p.timeout, "known_hosts": known_hosts}
            },
            timeout_socket=p.timeout,
            timeout_transport=p.timeout,
            timeout_ops=p.timeout,
            failed_when_contains=list(self.profile.failed_when_contains),
            on_open=self._on_open,
            on_close=self._on_close,
        )

    async def connect(self) -> None:
        p = self.params
        known_hosts = await known_hosts_for(p)
        with warnings.catch_warnings():  # scrapli warns when no enable secret is given
            warnings.simplefilter("ignore", UserWarning)
            self._conn = self._make(p, known_hosts)
        self._tap(self._conn)
        try:
            await self._conn.open()
        except asyncssh.HostKeyNotVerifiable as exc:
            self._conn = None
            raise SwitchError(
                f"SSH to {p.host}: host key does not match the pinned one (nothing was sent; "
                f"a replaced switch needs its pin removed): {exc}", device=p.name,
                reason="host_key",
            ) from exc
        except ScrapliAuthenticationFailed as exc:
            self._conn = None
            raise DriverAuthError(f"SSH login to {p.host} failed: {exc}", device=p.name) from exc
        except (TimeoutError, ScrapliTimeout) as exc:
            self._conn = None
            raise DriverTimeout(f"SSH to {p.host} timed out", device=p.name) from exc
        except (ScrapliException, OSError, asyncssh.Error) as exc:
            self._conn = None
            raise SwitchError(f"SSH to {p.host} failed: {exc}", device=p.name) from exc

    def _tap(self, conn: Any) -> None:
        """Record every line scrapli writes to the channel (prompts' returns excluded)."""
        write = conn.channel.write

        def recording_write(channel_input: str, redacted: bool = False) -> None:
            line = channel_input.strip("\r\n")
            if line and not redacted:
                self.sent.append(line)
            write(channel_input=channel_input, redacted=redacted)

        conn.channel.write = recording_write

    async def _on_open(self, conn: Any) -> None:
        await conn.acquire_priv(desired_priv=conn.default_desired_privilege_level)
        for line in self.profile.setup:
            await self._command(line, conn)

    async def _on_close(self, conn: Any) -> None:
        await conn.acquire_priv(desired_priv=conn.default_desired_privilege_level)
        conn.channel.write(channel_input=self.profile.logout)
        conn.channel.send_return()
        # let the device close the session itself, as it does after a logout (bounded wait)
        with contextlib.suppress(ScrapliException, OSError, TimeoutError):
            async with asyncio.timeout(2.0):
                while await conn.transport.read():
                    pass

    async def disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(ScrapliException, OSError):
            await conn.close()  # the session is gone either way

    def _live(self) -> Any:
        if self._conn is None:
            raise SwitchError("not connected", device=self.params.name)
        return self._conn

    # -- command helpers -------------------------------------------------------------------

    async def _command(self, line: str, conn: Any = None) -> str:
        conn = conn or self._live()
        try:
            resp = await conn.send_command(line)
        except ScrapliTimeout as exc:
            raise DriverTimeout(f"{line!r} timed out", device=self.params.name) from exc
        except (ScrapliConnectionError, ScrapliConnectionNotOpened) as exc:
            raise SwitchError(f"session lost during {line!r}", device=self.params.name) from exc
        if resp.failed:
            raise CommandFailed(
                f"device refused {line!r}",
                device=self.params.name,
                command=line,
                output=resp.result[-500:],
            )
        return str(resp.result)

    async def _configs(self, lines: list[str]) -> list[Any]:
        conn = self._live()
        try:
            multi = await conn.send_configs(lines, stop_on_failed=True)
        except ScrapliTimeout as exc:
            raise DriverTimeout("configuration timed out", device=self.params.name) from exc
        except (ScrapliConnectionError, ScrapliConnectionNotOpened) as exc:
            raise SwitchError("session lost while configuring", device=self.params.name) from exc
        return list(multi)

    # -- interface -------------------------------------------------------------------------

    async def find_port_by_mac(self, mac: str) -> MacLocation | None:
        mac = validate.mac_address(mac)
        out = await self._command(self.profile.show_mac.format(mac=self.profile.mac_format(mac)))
        return cli.parse_mac(self.profile, mac, out)

    async def get_port_config(self, port: str) -> PortConfig:
        port = validate.port_name(port, self.naming)
        out = await self._command(self.profile.show_config.format(port=port))
        return cli.parse_config(self.profile, port, out)

    async def get_port_configs(self, ports: list[str]) -> dict[str, PortConfig | ProvisionError]:
        """With three ports or more, one whole-configuration read instead of one per port
        (each read is a round trip; a ToR batch is up to 48 ports, read before and after)."""
        if self.profile.show_config_all is None or len(ports) < 3:
            return await super().get_port_configs(ports)
        try:
            stanzas = cli.split_stanzas(await self._command(self.profile.show_config_all))
        except CommandFailed:  # a device (or emulator) without it: read port by port
            return await super().get_port_configs(ports)
        out: dict[str, PortConfig | ProvisionError] = {}
        missing = []
        for port in ports:
            name = validate.port_name(port, self.naming)
            text = stanzas.get(name)
            if text is None:
                missing.append(port)  # spelled differently there: ask for it by name
                continue
            try:
                out[port] = cli.parse_config(self.profile, name, text)
            except ProvisionError as exc:
                out[port] = exc
        if missing:
            out.update(await super().get_port_configs(missing))
        return out

    def commands_for(self, change: PortChange) -> list[str]:
        return cli.change_commands(self.profile, self._checked(change))

    def _checked(self, ch: PortChange) -> PortChange:
        return PortChange(
            validate.port_name(ch.port, self.naming),
            validate.port_config(ch.config, self.naming),
            ch.previous,  # only its mode is used (to undo the old mode's lines)
        )

    async def apply(self, changes: list[PortChange]) -> None:
        """All blocks in one configuration pass; a refused line names its port."""
        lines: list[str] = []
        owner: list[str] = []
        for ch in changes:
            ch = self._checked(ch)
            block = cli.change_commands(self.profile, ch)
            lines += block
            owner += [ch.port] * len(block)
        if not lines:
            return
        responses = await self._configs(lines)  # stops at the first refused line
        for i, resp in enumerate(responses):
            if resp.failed:
                done = sorted({owner[j] for j in range(i)} - {owner[i]})
                raise CommandFailed(
                    f"device refused {resp.channel_input!r} on {owner[i]}",
                    device=self.params.name,
                    port=owner[i],
                    command=resp.channel_input,
                    applied=done,
                    output=str(resp.result)[-500:],
                )

    async def get_port_status(self, port: str) -> PortStatus:
        port = validate.port_name(port, self.naming)
        for st in await self.list_ports():
            if st.port == port:
                cfg = await self.get_port_config(port)
                return _with_config(st, cfg)
        raise SwitchError(f"no port {port}", device=self.params.name, port=port)

    async def list_ports(self) -> list[PortStatus]:
        return cli.parse_ports(self.profile, await self._command(self.profile.show_ports))

    async def save_config(self) -> None:
        conn = self._live()
        if len(self.profile.save) == 1 and not self.profile.save[0][1]:
            await self._command(self.profile.save[0][0])
            return
        steps = [(cmd, expect or "") for cmd, expect in self.profile.save]
        resp = await conn.send_interactive(steps)
        if resp.failed:
            raise CommandFailed(
                "saving the configuration failed",
                device=self.params.name,
                output=str(resp.result)[-500:],
            )


def _with_config(st: PortStatus, cfg: PortConfig) -> PortStatus:
    return PortStatus(
        port=st.port,
        status=st.status,
        speed=st.speed,
        duplex=st.duplex,
        vlans=cfg.vlans,
        mode=cfg.mode,
        description=cfg.description if cfg.description is not None else st.description,
    )


__all__ = ["SshCliDriver"]
