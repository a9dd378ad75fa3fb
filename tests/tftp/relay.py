"""A lossy UDP relay on loopback, placed between a TFTP client and the server.

It forwards the client's datagrams to the server (the first to the listening port, later ones to
the transfer's TID) and the server's back to the client, dropping every ``drop_every``-th and
duplicating every ``dup_every``-th datagram in each direction. Real sockets, real clients: only
the network misbehaves.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass
class RelayStats:
    forwarded: int = 0
    dropped: int = 0
    duplicated: int = 0


class _Side(asyncio.DatagramProtocol):
    def __init__(self, relay: LossyRelay, from_client: bool) -> None:
        self.relay, self.from_client = relay, from_client
        self.transport: asyncio.DatagramTransport | None = None
        self.count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.relay.on_datagram(self, data, addr)


class LossyRelay:
    def __init__(self, server: tuple[str, int], drop_every: int = 0, dup_every: int = 0) -> None:
        self.server = server
        self.drop_every, self.dup_every = drop_every, dup_every
        self.stats = RelayStats()
        self.client_addr: tuple[str, int] | None = None
        self.server_tid: tuple[str, int] | None = None

    async def start(self) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self.front_t, self.front = await loop.create_datagram_endpoint(
            lambda: _Side(self, True), local_addr=("127.0.0.1", 0)
        )
        self.back_t, self.back = await loop.create_datagram_endpoint(
            lambda: _Side(self, False), local_addr=("127.0.0.1", 0)
        )
        return self.front_t.get_extra_info("sockname")[:2]

    def close(self) -> None:
        self.front_t.close()
        self.back_t.close()

    def on_datagram(self, side: _Side, data: bytes, addr: tuple[str, int]) -> None:
        side.count += 1
        if side.from_client:
            self.client_addr = addr
            out, dest = self.back_t, self.server_tid or self.server
        else:
            if addr != self.server:
                self.server_tid = addr
            if self.client_addr is None:
                return
            out, dest = self.front_t, self.client_addr
        if self.drop_every and side.count % self.drop_every == 0:
            self.stats.dropped += 1
            return
        out.sendto(data, dest)
        self.stats.forwarded += 1
        if self.dup_every and side.count % self.dup_every == 0:
            out.sendto(data, dest)
            self.stats.duplicated += 1
