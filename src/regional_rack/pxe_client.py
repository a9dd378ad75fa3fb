"""A simulated PXE firmware and boot loader for the virtual rack.

It does what a server's NIC ROM and pxelinux do, over the real protocols and against the real
regional client services: a DHCP exchange (DISCOVER/OFFER/REQUEST/ACK, client architecture,
PXE vendor class) through a **relay agent** on loopback (so no root and no broadcast are needed:
the regional client serves it exactly as it serves an ``ip helper-address`` relay), then TFTP
downloads of the boot file and of ``pxelinux.cfg/01-<mac>`` (falling back to ``default``), and
the kernel and initrd named there. What it returns — the kernel command line — is what the
simulated server then "boots": an agent started with those parameters.

Deviation from real firmware, on purpose: TFTP is reached on the rack's configured port (the
demo runs without root, so not on port 69).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from dataclasses import dataclass, field

from regional_client.agent.cmdline import parse_cmdline
from regional_client.core.errors import ProtocolError
from regional_client.dhcp import packet as dp
from regional_client.tftp import client as tftp

PXE_PRL = bytes([1, 3, 6, 12, 15, 28, 43, 54, 60, 66, 67, 128, 129, 130, 131, 132, 133, 134, 135])


@dataclass
class DhcpResult:
    ip: str
    server_id: str
    boot_file: str
    tftp_server: str
    options: dict[int, bytes] = field(default_factory=dict)


@dataclass
class BootResult:
    dhcp: DhcpResult
    config_name: str
    """Which pxelinux config was used (per-MAC or ``default``)."""
    kernel: str
    initrd: str | None
    params: dict[str, str]
    cmdline: str
    bytes_fetched: int = 0


# ----- sans-IO: messages ------------------------------------------------------------------------


def _mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", "").replace("-", "")) + b"\x00" * 10


def request_packet(
    msg: int, mac: str, xid: int, giaddr: str, arch: int = 0, extra: dict[int, bytes] | None = None
) -> bytes:
    """A relayed BOOTREQUEST as PXE firmware + relay agent produce it."""
    opts: dict[int, bytes] = {
        dp.Opt.MESSAGE_TYPE: bytes([msg]),
        dp.Opt.PARAM_REQUEST: PXE_PRL,
        dp.Opt.MAX_MESSAGE_SIZE: (1464).to_bytes(2, "big"),
        dp.Opt.VENDOR_CLASS: f"PXEClient:Arch:{arch:05d}:UNDI:002001".encode(),
        dp.Opt.CLIENT_ARCH: arch.to_bytes(2, "big"),
        dp.Opt.CLIENT_NDI: bytes([1, 2, 1]),
        dp.Opt.UUID: b"\x00" + bytes.fromhex(mac.replace(":", "")).rjust(16, b"\x00"),
    }
    opts.update(extra or {})
    p = dp.DhcpPacket(
        op=dp.BOOTREQUEST, hops=1, xid=xid, flags=0x8000, giaddr=dp.ip_bytes(giaddr),
        chaddr=_mac_bytes(mac), options=opts,
    )  # fmt: skip
    return dp.encode(p)


def parse_pxelinux(text: str) -> tuple[str, str | None, str]:
    """(kernel, initrd, append line) of the DEFAULT label of a pxelinux config."""
    labels: dict[str, dict[str, str]] = {}
    default = None
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        rest = rest.strip()
        if word == "DEFAULT":
            default = rest.split()[0] if rest else None
        elif word == "LABEL":
            current = labels.setdefault(rest, {})
        elif current is not None and word in ("KERNEL", "LINUX", "APPEND", "INITRD", "LOCALBOOT"):
            current[word] = rest
    label = labels.get(default or "") or (next(iter(labels.values())) if labels else None)
    if label is None:
        raise ProtocolError("pxelinux config has no LABEL")
    if "LOCALBOOT" in label:
        return "", None, "localboot"
    kernel = label.get("KERNEL") or label.get("LINUX") or ""
    append = label.get("APPEND", "")
    m = re.search(r"(?:^|\s)initrd=(\S+)", append)
    initrd = label.get("INITRD") or (m.group(1) if m else None)
    return kernel, initrd, append


# ----- relay agent ------------------------------------------------------------------------------


class RelayAgent(asyncio.DatagramProtocol):
    """One loopback UDP socket standing for the install network's ``ip helper-address``.

    Requests are sent to the DHCP server with ``giaddr`` set to this relay's address; replies
    arrive here and are handed to the waiting exchange by transaction id.
    """

    def __init__(self, server: tuple[str, int], address: str = "127.0.0.1") -> None:
        self.server = server
        self.address = address
        self.transport: asyncio.DatagramTransport | None = None
        self._waiting: dict[int, asyncio.Queue[dp.DhcpPacket]] = {}

    async def open(self, port: int = 0) -> int:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=(self.address, port)
        )
        return int(self.transport.get_extra_info("sockname")[1])

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            pkt = dp.decode(data)
        except ProtocolError:
            return
        q = self._waiting.get(pkt.xid)
        if q is not None:
            q.put_nowait(pkt)

    async def exchange(
        self, mac: str, arch: int = 0, timeout: float = 4.0, attempts: int = 4
    ) -> DhcpResult:
        """DISCOVER → OFFER → REQUEST → ACK, retransmitting like firmware does: ``attempts``
        sends, the wait doubling from ``timeout`` (PXE spec: 4, 8, 16, 32 s — a minute)."""
        assert self.transport is not None
        xid = int.from_bytes(os.urandom(4), "big")
        q: asyncio.Queue[dp.DhcpPacket] = asyncio.Queue()
        self._waiting[xid] = q
        try:
            discover = request_packet(dp.MessageType.DISCOVER, mac, xid, self.address, arch)
            offer = await self._ask(q, discover, dp.MessageType.OFFER, timeout, attempts)
            server_id = offer.options.get(dp.Opt.SERVER_ID, b"")
            req = request_packet(
                dp.MessageType.REQUEST, mac, xid, self.address, arch,
                {dp.Opt.REQUESTED_IP: offer.yiaddr, dp.Opt.SERVER_ID: server_id},
            )  # fmt: skip
            ack = await self._ask(q, req, dp.MessageType.ACK, timeout, attempts)
        finally:
            self._waiting.pop(xid, None)
        boot = ack.options.get(dp.Opt.BOOTFILE) or ack.file.rstrip(b"\x00")
        tftp_opt = ack.options.get(dp.Opt.TFTP_SERVER)
        tftp_server = tftp_opt.decode() if tftp_opt else dp.ip_str(ack.siaddr)
        return DhcpResult(
            ip=dp.ip_str(ack.yiaddr),
            server_id=dp.ip_str(server_id) if len(server_id) == 4 else "",
            boot_file=boot.decode("ascii", "replace"),
            tftp_server=tftp_server,
            options=dict(ack.options),
        )

    async def _ask(
        self, q: asyncio.Queue[dp.DhcpPacket], data: bytes, want: int, timeout: float, n: int
    ) -> dp.DhcpPacket:
        assert self.transport is not None
        for i in range(n):
            self.transport.sendto(data, self.server)
            loop = asyncio.get_running_loop()
            end = loop.time() + timeout * 2**i
            while (left := end - loop.time()) > 0:
                try:
                    pkt = await asyncio.wait_for(q.get(), left)
                except TimeoutError:
                    break
                if pkt.msg_type == dp.MessageType.NAK:
                    raise ProtocolError("DHCP server answered NAK")
                if pkt.msg_type == want:
                    return pkt
        raise ProtocolError(f"no DHCP {dp.MessageType(want).name} after {n} attempts")


# ----- the boot ---------------------------------------------------------------------------------


async def _fetch(host: str, port: int, name: str, ip: str | None = None) -> bytes:
    """One file over TFTP, from the address DHCP gave the server (as firmware does)."""
    chunks: list[bytes] = []
    local = (ip, 0) if ip else None
    await tftp.fetch(host, port, name, blksize=1468, tsize=True, sink=chunks.append,
                     local_addr=local)  # fmt: skip
    return b"".join(chunks)


async def pxe_boot(
    relay: RelayAgent, mac: str, tftp_addr: tuple[str, int], arch: int = 0
) -> BootResult:
    """The firmware + pxelinux part of a network boot; returns the kernel command line."""
    lease = await relay.exchange(mac, arch)
    host, port = tftp_addr
    ip = lease.ip if lease.ip.startswith("127.") else None  # loopback: a source of its own
    total = len(await _fetch(host, port, lease.boot_file, ip))
    name = "pxelinux.cfg/01-" + mac.lower().replace(":", "-")
    try:
        text = (await _fetch(host, port, name, ip)).decode("utf-8", "replace")
    except ProtocolError:
        name = "pxelinux.cfg/default"
        text = (await _fetch(host, port, name, ip)).decode("utf-8", "replace")
    total += len(text)
    kernel, initrd, append = parse_pxelinux(text)
    for path in (kernel, initrd):
        if path:
            with contextlib.suppress(ProtocolError):
                total += len(await _fetch(host, port, path, ip))
    return BootResult(lease, name, kernel, initrd, parse_cmdline(append), append, total)
