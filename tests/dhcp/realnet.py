"""A boot network for real-client tests: namespaces, veth pairs, dhclient and udhcpc runners.

Topology (all inside namespaces created here, never the host's):

    [S] srv (10.9.0.1/24) ── veth ── cli [C]     DHCP clients run in C
    [S] srv2 (10.8.0.1/24) ─ veth ── cli2 [C2]   an interface the server must NOT answer on
    [S] srvr (10.7.0.1/24) ─ veth ── rel [R]     R plays a relay (giaddr 10.20.0.1, routed)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import textwrap
from pathlib import Path

from .netns import Netns, unique, veth

CLIENT_MAC = "52:54:00:c0:00:01"

DHCLIENT_CONF = """\
request subnet-mask, broadcast-address, routers, domain-name-servers, host-name,
        bootfile-name, tftp-server-name;
timeout 20;
retry 5;
initial-interval 1;
"""

# dhclient/udhcpc call this at every event: record the environment, configure the address so
# a later unicast renew can leave from it (all inside the client's namespace).
SCRIPT = """\
#!/bin/sh
ev="${reason:-$1}"
env | sort > "$OUT/$ev.env.tmp" && mv "$OUT/$ev.env.tmp" "$OUT/$ev.env"
case "$ev" in
  PREINIT) ip link set "$interface" up ;;
  BOUND|RENEW|REBIND|REBOOT)
    ip addr flush dev "$interface"
    ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
  bound|renew)
    ip addr flush dev "$interface"; ip addr add "$ip/$subnet" dev "$interface" ;;
  deconfig) ip link set "$interface" up; ip addr flush dev "$interface" ;;
esac
echo "$ev" >> "$OUT/events"
exit 0
"""


class BootNet:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.s = Netns(unique("rcdhcpS"))
        self.c = Netns(unique("rcdhcpC"))
        self.c2 = Netns(unique("rcdhcpD"))
        self.r = Netns(unique("rcdhcpR"))
        self.srv, self.cli = unique("rcds"), unique("rcdc")
        self.srv2, self.cli2 = unique("rcdt"), unique("rcdu")
        self.srvr, self.rel = unique("rcdv"), unique("rcdw")
        veth(self.s, self.srv, self.c, self.cli)
        veth(self.s, self.srv2, self.c2, self.cli2)
        veth(self.s, self.srvr, self.r, self.rel)
        self.c.ip("link", "set", self.cli, "address", CLIENT_MAC)
        self.s.ip("addr", "add", "10.9.0.1/24", "dev", self.srv)
        self.s.ip("addr", "add", "10.8.0.1/24", "dev", self.srv2)
        self.s.ip("addr", "add", "10.7.0.1/24", "dev", self.srvr)
        self.r.ip("addr", "add", "10.7.0.2/24", "dev", self.rel)
        self.r.ip("addr", "add", "10.20.0.1/24", "dev", "lo")
        self.s.ip("route", "add", "10.20.0.0/24", "via", "10.7.0.2")
        self.r.ip("route", "add", "10.9.0.0/24", "via", "10.7.0.1")
        self.script = tmp / "event.sh"
        self.script.write_text(SCRIPT)
        self.script.chmod(0o755)

    def close(self) -> None:
        for ns in (self.s, self.c, self.c2, self.r):
            ns.delete()

    def set_client_mac(self, mac: str) -> None:
        self.c.ip("link", "set", self.cli, "address", mac)
        self.c.ip("addr", "flush", "dev", self.cli)


class Client:
    """One run of a real DHCP client; ``env(event)`` reads what its script saw."""

    def __init__(self, net: BootNet, name: str) -> None:
        self.net = net
        self.dir = net.tmp / name
        self.dir.mkdir()
        self.proc: asyncio.subprocess.Process | None = None

    def events(self) -> list[str]:
        p = self.dir / "events"
        return p.read_text().split() if p.exists() else []

    def env(self, event: str) -> dict[str, str]:
        text = (self.dir / f"{event}.env").read_text()
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    async def wait_event(self, event: str, timeout: float = 30.0, after: int = 0) -> bool:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            if event in self.events()[after:]:
                return True
            if self.proc is not None and self.proc.returncode is not None:
                return event in self.events()[after:]
            await asyncio.sleep(0.1)
        return False

    async def start(self, *argv: str, ns: Netns | None = None) -> None:
        ns = ns or self.net.c
        env = {"PATH": os.environ["PATH"], "OUT": str(self.dir)}
        with open(self.dir / "stdout", "wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *ns.cmd(*argv), env=env, stdout=out, stderr=asyncio.subprocess.STDOUT
            )

    async def stop(self) -> None:
        pidfile = self.dir / "pid"
        if pidfile.exists():  # dhclient daemonized: its pid is in its pid file
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(pidfile.read_text().strip()), 15)
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    def log(self) -> str:
        p = self.dir / "stdout"
        return p.read_text(errors="replace") if p.exists() else ""


async def dhclient(net: BootNet, name: str) -> Client:
    c = Client(net, name)
    conf = c.dir / "dhclient.conf"
    conf.write_text(textwrap.dedent(DHCLIENT_CONF))
    await c.start(
        "dhclient", "-4", "-1", "-v", "-cf", str(conf), "-lf", str(c.dir / "leases"),
        "-pf", str(c.dir / "pid"), "-sf", str(net.script), "-e", f"OUT={c.dir}", net.cli,
    )  # fmt: skip
    return c


async def udhcpc(net: BootNet, name: str, *extra: str, ns: Netns | None = None,
                 iface: str | None = None) -> Client:  # fmt: skip
    c = Client(net, name)
    await c.start(
        "udhcpc", "-f", "-i", iface or net.cli, "-s", str(net.script), "-t", "5", "-T", "1",
        "-A", "1", "-O", "bootfile", "-O", "tftp", *extra, ns=ns,
    )  # fmt: skip
    return c
