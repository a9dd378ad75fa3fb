"""A small asyncio TFTP read client (RFC 1350/2347/2348/2349/7440).

Used by the test suite and ``bench/`` as a real UDP client that can negotiate ``windowsize``
(curl and tftp-hpa cannot), and handy for checking a server by hand::

    python -m regional_client.tftp.client 127.0.0.1 6969 pxelinux.0 --blksize 1468

The payload is hashed (SHA-256) as it arrives, or written to ``sink``, so a hundred concurrent
clients do not hold a hundred files in memory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import socket
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from regional_client.core.errors import ProtocolError
from regional_client.tftp import packets
from regional_client.tftp.packets import Opcode, Request

__all__ = ["FetchResult", "TftpClientError", "fetch"]

_HH = struct.Struct("!HH")


class TftpClientError(ProtocolError):
    """The server refused or the transfer failed (``code`` holds a TFTP error code if any)."""


@dataclass(slots=True)
class FetchResult:
    size: int = 0
    sha256: str = ""
    options: dict[str, str] = field(default_factory=dict)
    acks_sent: int = 0
    timeouts: int = 0


class _Proto(asyncio.DatagramProtocol):
    def __init__(
        self,
        server: tuple[str, int],
        request: bytes,
        want_options: bool,
        timeout: float,
        retries: int,
        sink: Callable[[bytes], object] | None,
    ) -> None:
        self.server, self.request, self.timeout, self.retries = server, request, timeout, retries
        self.want_options = want_options
        self.sink = sink
        self.hash = hashlib.sha256()
        self.result = FetchResult()
        self.done: asyncio.Future[FetchResult] = asyncio.get_running_loop().create_future()
        self.tid: tuple[str, int] | None = None
        self.blksize, self.windowsize = 512, 1
        self.expected = 1  # absolute index of the next block wanted
        self.in_window = 0
        self.last_rx = 0.0
        self.tries = 0
        self.transport: asyncio.DatagramTransport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.ooo_acked = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.loop = asyncio.get_running_loop()
        sock = transport.get_extra_info("socket")
        if sock is not None:  # a whole window must fit, or its tail is dropped by the kernel
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self._send_request()

    def _send_request(self) -> None:
        assert self.transport is not None
        self.transport.sendto(self.request, self.server)
        self.last_rx = self.loop.time()
        self._arm()

    def _ack(self, block: int) -> None:
        assert self.transport is not None and self.tid is not None
        self.transport.sendto(_HH.pack(Opcode.ACK, block & 0xFFFF), self.tid)
        self.result.acks_sent += 1

    def _arm(self) -> None:
        if self.timer is None and not self.done.done():
            self.timer = self.loop.call_at(self.last_rx + self.timeout, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        if self.done.done():
            return
        if self.loop.time() < self.last_rx + self.timeout:
            self._arm()
            return
        self.tries += 1
        self.result.timeouts += 1
        if self.tries > self.retries:
            self._fail(TftpClientError("timed out waiting for the server"))
            return
        self.last_rx = self.loop.time()
        if self.tid is None:
            self._send_request()
            return
        self._ack(self.expected - 1)
        self._arm()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.done.done() or len(data) < 4:
            return
        if self.tid is None:
            self.tid = addr[:2]
        elif addr[:2] != self.tid:
            return  # foreign TID (RFC 1350: answer with error 5; ignoring is enough here)
        op, block = _HH.unpack_from(data)
        self.last_rx = self.loop.time()
        self.tries = 0
        if op == Opcode.DATA:
            self._on_data(block, data)
        elif op == Opcode.OACK and self.expected == 1:
            self._on_oack(data)
        elif op == Opcode.ERROR:
            msg = data[4:].split(b"\0", 1)[0].decode("utf-8", "replace")
            self._fail(TftpClientError(f"server error {block}: {msg}", code=block))

    def _on_oack(self, data: bytes) -> None:
        oack = packets.decode(data)
        assert isinstance(oack, packets.Oack)
        self.result.options = oack.options
        self.blksize = int(oack.options.get("blksize", 512))
        self.windowsize = int(oack.options.get("windowsize", 1))
        self._ack(0)

    def _on_data(self, block: int, data: bytes) -> None:
        if block != (self.expected & 0xFFFF):
            if not self.ooo_acked:  # tell the server once where to resume (RFC 7440)
                self.ooo_acked = True
                self._ack(self.expected - 1)
            return
        self.ooo_acked = False
        payload = data[4:]
        self.hash.update(payload)
        if self.sink is not None:
            self.sink(payload)
        self.result.size += len(payload)
        self.expected += 1
        self.in_window += 1
        last = len(payload) < self.blksize
        if last or self.in_window >= self.windowsize:
            self.in_window = 0
            self._ack(block)
        if last:
            self.result.sha256 = self.hash.hexdigest()
            self.done.set_result(self.result)
            if self.timer is not None:
                self.timer.cancel()

    def _fail(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)
        if self.timer is not None:
            self.timer.cancel()

    def error_received(self, exc: Exception) -> None:
        self._fail(TftpClientError(f"network error: {exc}"))


async def fetch(
    host: str,
    port: int,
    name: str | bytes,
    *,
    blksize: int | None = None,
    windowsize: int | None = None,
    tsize: bool = False,
    timeout: float = 1.0,
    retries: int = 5,
    mode: str = "octet",
    sink: Callable[[bytes], object] | None = None,
    local_addr: tuple[str, int] | None = None,
) -> FetchResult:
    """Download ``name``; return size and SHA-256. Raises :class:`TftpClientError`."""
    opts: dict[str, str] = {}
    if blksize:
        opts["blksize"] = str(blksize)
    if windowsize:
        opts["windowsize"] = str(windowsize)
    if tsize:
        opts["tsize"] = "0"
    raw = name.encode() if isinstance(name, str) else name
    req = packets.encode_request(Request(Opcode.RRQ, raw, mode, opts))
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: _Proto((host, port), req, bool(opts), timeout, retries, sink),
        local_addr=local_addr or ("127.0.0.1" if ":" not in host else "::1", 0),
    )
    try:
        return await proto.done
    finally:
        transport.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Fetch one file over TFTP and print its SHA-256")
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("name")
    ap.add_argument("--blksize", type=int)
    ap.add_argument("--windowsize", type=int)
    ap.add_argument("--output", "-o")
    a = ap.parse_args(argv)
    out = open(a.output, "wb") if a.output else None  # noqa: SIM115
    try:
        r = asyncio.run(
            fetch(
                a.host,
                a.port,
                a.name,
                blksize=a.blksize,
                windowsize=a.windowsize,
                tsize=True,
                sink=out.write if out else None,
            )
        )
    except TftpClientError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        if out:
            out.close()
    print(f"{r.sha256}  {r.size} bytes  options={r.options}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
