"""The I/O shell: UDP sockets, an asyncio ``DatagramProtocol`` that moves bytes, ARP entries.

Two sockets at most:

* **local** — ``0.0.0.0:port`` bound to ``dhcp.interface`` with ``SO_BINDTODEVICE``: broadcasts
  and unicasts arriving on the install interface, and nothing from any other interface;
* **relay** — ``listen_addr:port`` (only when relay subnets are configured): relayed requests
  (giaddr set) arriving unicast from DHCP relays on any interface.

A reply that must go unicast to an address the client cannot answer ARP for yet (RFC 2131 §4.1:
no broadcast bit, no ciaddr, no relay) gets a kernel ARP entry first (``SIOCSARP``; needs
CAP_NET_ADMIN) and falls back to broadcast when that is not possible.
"""

from __future__ import annotations

import asyncio
import fcntl
import socket
import struct
from collections.abc import Callable

from regional_client.core.logs import get_logger
from regional_client.dhcp.responder import BROADCAST_ADDR, Outcome

__all__ = ["DhcpEndpoint", "interface_address", "open_socket"]

log = get_logger("dhcp")

SIOCSARP = 0x8955
SIOCGIFADDR = 0x8915
ATF_COM = 0x02
ARPHRD_ETHER = 1


SO_MEMINFO = 55  # linux/sock_diag: u32[9], [0] = bytes in the receive queue
_MEMINFO = struct.Struct("I32x")
READ_BATCH = 64
"""Most datagrams handled per socket wake-up before other work gets a turn."""
RECV_BUFFER = 4 * 1024 * 1024
"""Socket receive buffer: absorbs bursts (a PXE rack powering on) while the loop is busy; the
kernel caps it at ``net.core.rmem_max``."""


def open_socket(addr: str, port: int, interface: str | None) -> socket.socket:
    """A non-blocking UDP socket for the server, bound to ``interface`` when given."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
        if interface:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        s.bind((addr, port))
        s.setblocking(False)
    except OSError:
        s.close()
        raise
    return s


def interface_address(sock: socket.socket, interface: str) -> str | None:
    """The IPv4 address of ``interface`` in the socket's network namespace, or None."""
    req = struct.pack("16sH14s", interface.encode()[:15], socket.AF_INET, b"\x00" * 14)
    try:
        res = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, req)
    except OSError:
        return None
    return socket.inet_ntoa(res[20:24])


class DhcpEndpoint:
    """One server socket, read with ``loop.add_reader``: each wake-up drains up to
    :data:`READ_BATCH` datagrams (asyncio's datagram transport takes one per loop iteration,
    which costs an epoll round per packet). Sends are direct non-blocking ``sendto`` calls;
    UDP send errors are counted, never raised. ``local`` tells the responder the datagram came
    from the served interface."""

    def __init__(
        self,
        sock: socket.socket,
        on_datagram: Callable[[bytes, DhcpEndpoint], None],
        local: bool,
        interface: str | None,
        on_send_error: Callable[[str], None] | None = None,
    ) -> None:
        self.sock = sock
        self.on_datagram = on_datagram
        self.local = local
        self.interface = interface
        self.on_send_error = on_send_error
        self._arp_ok = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self.behind = False
        """True while the receive queue holds more than ``shed_above`` bytes: requests arrive
        faster than they are handled (the service then sheds new DISCOVERs)."""
        rcvbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self.shed_above = rcvbuf // 8

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        loop.add_reader(self.sock.fileno(), self._read_ready)

    def pause(self) -> None:
        """Stop reading (replies can still be sent)."""
        if self._loop is not None:
            self._loop.remove_reader(self.sock.fileno())
            self._loop = None

    def close(self) -> None:
        self.pause()
        self.sock.close()

    def queued_bytes(self) -> int:
        """Bytes waiting in the socket's receive queue (``SO_MEMINFO``), 0 if unknown."""
        try:
            return int(_MEMINFO.unpack(self.sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 36))[0])
        except OSError:
            return 0

    def _read_ready(self) -> None:
        self.behind = self.queued_bytes() > self.shed_above
        recv, handle = self.sock.recv, self.on_datagram
        for _ in range(READ_BATCH):
            try:
                data = recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # e.g. ICMP errors reported on the socket
                self._error(e)
                return
            handle(data, self)

    def _error(self, exc: OSError) -> None:
        if self.on_send_error is not None:
            self.on_send_error(type(exc).__name__)

    def send(self, out: Outcome) -> None:
        if out.dest is None:
            return
        dest = out.dest
        if out.hw is not None and not self._arp(dest[0], out.hw):
            dest = (BROADCAST_ADDR, dest[1])
        try:
            self.sock.sendto(out.data, dest)
        except OSError as e:
            self._error(e)

    def _arp(self, ip: str, hw: bytes) -> bool:
        """Add a complete ARP entry ``ip → hw`` on the interface so a unicast can leave."""
        if not self._arp_ok or not self.interface:
            return False
        sock = self.sock
        req = struct.pack(
            "=H2s4s8sH6s8si16s16s",
            socket.AF_INET, b"", socket.inet_aton(ip), b"",
            ARPHRD_ETHER, hw, b"",
            ATF_COM, b"", self.interface.encode()[:15],
        )  # fmt: skip
        try:
            fcntl.ioctl(sock.fileno(), SIOCSARP, req)
        except OSError as e:
            self._arp_ok = False  # no CAP_NET_ADMIN (or no ARP on this link): broadcast instead
            log.warning(
                "cannot add ARP entries; unicast replies fall back to broadcast",
                action="arp_unavailable",
                error=str(e),
            )
            return False
        return True
