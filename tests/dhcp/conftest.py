"""Fixtures for DHCP tests: a service factory on a real etcd, a loopback "relay" socket."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from regional_client.config.dhcp import DhcpConfig
from regional_client.core.metrics import Metrics
from regional_client.dhcp.service import DhcpService
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys


class Relay:
    """A UDP socket on 127.0.0.1 playing a DHCP relay agent (giaddr 127.0.0.1)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    async def ask(self, data: bytes, server_port: int, timeout: float = 3.0) -> bytes | None:
        loop = asyncio.get_running_loop()
        await loop.sock_sendto(self.sock, data, ("127.0.0.1", server_port))
        try:
            return await asyncio.wait_for(loop.sock_recv(self.sock, 2048), timeout)
        except TimeoutError:
            return None

    def close(self) -> None:
        self.sock.close()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    r = Relay()
    yield r
    r.close()


ServiceFactory = Callable[..., Any]


@pytest.fixture
async def loopback_service(
    etcd_store: EtcdStore, keys: Keys, relay: Relay
) -> AsyncIterator[ServiceFactory]:
    """Build and start DhcpServices serving a "relayed" subnet 127.0.0.0/24 on loopback only.

    Replies go to the relay (giaddr 127.0.0.1) at the relay fixture's port; nothing leaves
    loopback. ``clock`` may be passed to control time.
    """
    started: list[DhcpService] = []

    async def make(clock: Callable[[], float] | None = None, **over: Any) -> DhcpService:
        cfg: dict[str, Any] = {
            "interface": None,
            "listen_addr": "127.0.0.1",
            "port": free_udp_port(),
            "relay_reply_port": relay.port,
            "server_id": "127.0.0.1",
            "tftp_server": "127.0.0.1",
            "dns_servers": ["127.0.0.53"],
            "lease_time": "10m",
            "relay_subnets": [
                {
                    "subnet": "127.0.0.0/24",
                    "gateway": "127.0.0.1",
                    "ip_range": {"start": "127.0.0.100", "end": "127.0.0.104"},
                }
            ],
        }
        cfg.update(over)
        kw: dict[str, Any] = {"regional_url": "http://127.0.0.1:8081"}
        if clock is not None:
            kw["clock"] = clock
        svc = DhcpService(DhcpConfig.model_validate(cfg), etcd_store, keys, Metrics(keys.idc), **kw)
        await svc.start()
        started.append(svc)
        return svc

    yield make
    for svc in started:
        await svc.stop()
