"""Real DHCP clients (ISC dhclient, busybox udhcpc) against our server in network namespaces.

The server's sockets are opened inside the server namespace (see :mod:`.netns`); it reaches the
test etcd on the host's loopback from the test process. Needs root (namespaces).
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from regional_client.config.dhcp import DhcpConfig
from regional_client.core.metrics import Metrics
from regional_client.dhcp.packet import MessageType as M
from regional_client.dhcp.server import open_socket
from regional_client.dhcp.service import DhcpService
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys

from .clientlib import reply_summary, request
from .netns import have_netns
from .realnet import CLIENT_MAC, BootNet, dhclient, udhcpc

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not have_netns(), reason="needs root for network namespaces"),
]

for tool in ("dhclient", "udhcpc", "perfdhcp"):
    if shutil.which(tool) is None:
        raise RuntimeError(f"{tool} missing: apt-get install isc-dhcp-client udhcpc kea-admin")

URL = "http://10.9.0.1:8081"


@pytest.fixture
def net(tmp_path: Path) -> AsyncIterator[BootNet]:
    n = BootNet(tmp_path)
    yield n
    n.close()


@pytest.fixture
async def server(
    net: BootNet, etcd_store: EtcdStore, keys: Keys
) -> AsyncIterator[Callable[..., Any]]:
    """Start (and restart) our DHCP service inside the server namespace."""
    running: list[DhcpService] = []

    def factory(addr: str, port: int, iface: str | None) -> socket.socket:
        return net.s.run(open_socket, addr, port, iface)

    async def start() -> DhcpService:
        cfg = DhcpConfig.model_validate(
            {
                "interface": net.srv,
                "ip_range": {"start": "10.9.0.100", "end": "10.9.0.150"},
                "gateway": "10.9.0.254",
                "dns_servers": ["10.9.0.53", "10.9.0.54"],
                "tftp_server": "10.9.0.1",
                "lease_time": "10m",
                "relay_subnets": [
                    {
                        "subnet": "10.20.0.0/24",
                        "gateway": "10.20.0.1",
                        "ip_range": {"start": "10.20.0.10", "end": "10.20.0.20"},
                    },
                    {
                        "subnet": "10.7.0.0/24",
                        "ip_range": {"start": "10.7.0.10", "end": "10.7.0.250"},
                    },
                ],
            }
        )
        svc = DhcpService(
            cfg, etcd_store, keys, Metrics(keys.idc), regional_url=URL, socket_factory=factory
        )
        await svc.start()
        running.append(svc)
        return svc

    async def stop_all() -> None:
        while running:
            await running.pop().stop()

    start.stop_all = stop_all  # type: ignore[attr-defined]
    yield start
    await stop_all()


async def test_dhclient_gets_static_binding_router_dns_boot_file(
    net: BootNet, server: Callable[..., Any]
) -> None:
    svc = await server()
    await svc.add_binding(CLIENT_MAC, "10.9.0.50", hostname="node50")
    c = await dhclient(net, "dh1")
    try:
        assert await c.wait_event("BOUND"), c.log()
        e = c.env("BOUND")
        assert e["new_ip_address"] == "10.9.0.50"
        assert e["new_routers"] == "10.9.0.254"
        assert e["new_domain_name_servers"] == "10.9.0.53 10.9.0.54"
        assert e["new_subnet_mask"] == "255.255.255.0"
        assert e["new_host_name"] == "node50"
        assert e["new_filename"] == "pxelinux.0" and e["new_bootfile_name"] == "pxelinux.0"
        assert e["new_tftp_server_name"] == "10.9.0.1"
        assert e["new_dhcp_server_identifier"] == "10.9.0.1"
    finally:
        await c.stop()


async def test_dhclient_without_binding_gets_pool_address(
    net: BootNet, server: Callable[..., Any]
) -> None:
    svc = await server()
    c = await dhclient(net, "dh2")
    try:
        assert await c.wait_event("BOUND"), c.log()
        assert c.env("BOUND")["new_ip_address"] == "10.9.0.100"
        assert svc.get_lease(CLIENT_MAC)["ip"] == "10.9.0.100"
    finally:
        await c.stop()


async def test_udhcpc_static_binding_then_pool_client_renews_after_restart(
    net: BootNet, server: Callable[..., Any]
) -> None:
    svc = await server()
    await svc.add_binding(CLIENT_MAC, "10.9.0.60", hostname="node60", boot_file="special.efi")
    c = await udhcpc(net, "u1", "-q", "-n")
    try:
        assert await c.wait_event("bound"), c.log()
        e = c.env("bound")
        assert e["ip"] == "10.9.0.60" and e["router"] == "10.9.0.254"
        assert e["dns"].split() == ["10.9.0.53", "10.9.0.54"]
        assert e["hostname"] == "node60" and e["boot_file"] == "special.efi"
        assert e["bootfile"] == "special.efi" and e["siaddr"] == "10.9.0.1"
    finally:
        await c.stop()
    # a client with no binding gets a pool address; the server restarts; it renews the same
    net.set_client_mac("52:54:00:c0:00:02")
    c = await udhcpc(net, "u2")
    try:
        assert await c.wait_event("bound"), c.log()
        ip = c.env("bound")["ip"]
        assert ip == "10.9.0.100"
        await server.stop_all()  # type: ignore[attr-defined]
        svc2 = await server()
        assert svc2.get_lease("52:54:00:c0:00:02")["ip"] == ip
        n = len(c.events())
        assert c.proc is not None
        c.proc.send_signal(signal.SIGUSR1)  # renew now (unicast REQUEST from ciaddr)
        assert await c.wait_event("renew", after=n), c.log()
        assert c.env("renew")["ip"] == ip
        assert "nak" not in c.events()
    finally:
        await c.stop()


@pytest.mark.parametrize(
    ("extra", "expect"),
    [
        (["-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "0x5d:0000"], "pxelinux.0"),
        (["-V", "PXEClient:Arch:00007:UNDI:003016", "-x", "0x5d:0007"], "grubnetx64.efi"),
        (["-V", "PXEClient:Arch:00009:UNDI:003016", "-x", "0x5d:0009"], "grubnetx64.efi"),
        (["-V", "HTTPClient:Arch:00016:UNDI:003001", "-x", "0x5d:0010"],
         URL + "/boot/files/ipxe.efi"),
        (["-x", "0x4d:69505845", "-x", "0x5d:0007"], URL + "/boot/ipxe/" + CLIENT_MAC),
    ],
    ids=["bios", "uefi7", "uefi9", "http16", "ipxe"],
)  # fmt: skip
async def test_udhcpc_boot_file_by_architecture(
    net: BootNet, server: Callable[..., Any], extra: list[str], expect: str
) -> None:
    await server()
    c = await udhcpc(net, "arch", "-q", "-n", *extra)
    try:
        assert await c.wait_event("bound"), c.log()
        e = c.env("bound")
        assert e["boot_file"] == expect and e["bootfile"] == expect
    finally:
        await c.stop()


async def test_no_answer_on_other_interface(net: BootNet, server: Callable[..., Any]) -> None:
    svc = await server()
    c = await udhcpc(net, "other", "-q", "-n", "-t", "2", ns=net.c2, iface=net.cli2)
    try:
        assert c.proc is not None
        rc = await asyncio.wait_for(c.proc.wait(), 30)
        assert rc != 0 and "bound" not in c.events()
        assert svc.leases() == []
    finally:
        await c.stop()


def _relay_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("10.20.0.1", 67))
    s.settimeout(3)
    return s


async def test_relayed_discover_request_answered_unicast_to_relay(
    net: BootNet, server: Callable[..., Any]
) -> None:
    await server()
    sock = net.r.run(_relay_socket)
    mac = "52:54:00:d0:00:01"
    try:
        agent = {82: b"\x01\x05Gi0/1"}

        def ask(data: bytes) -> tuple[bytes, tuple[str, int]]:
            sock.sendto(data, ("10.9.0.1", 67))
            return sock.recvfrom(2048)

        offer, src = await asyncio.to_thread(ask, request(mac, M.DISCOVER, giaddr="10.20.0.1",
                                                              options=agent))  # fmt: skip
        o = reply_summary(offer)
        assert o["type"] == M.OFFER and o["yiaddr"] == "10.20.0.10" and o["router"] == "10.20.0.1"
        assert src[1] == 67 and src[0] in ("10.7.0.1", "10.9.0.1")  # unicast, from the server
        ack, _ = await asyncio.to_thread(
            ask,
            request(mac, M.REQUEST, giaddr="10.20.0.1", requested="10.20.0.10",
                    server_id="10.9.0.1", options=agent),
        )  # fmt: skip
        a = reply_summary(ack)
        assert a["type"] == M.ACK and a["yiaddr"] == "10.20.0.10" and 82 in a["codes"]  # type: ignore[operator]
    finally:
        sock.close()


async def test_perfdhcp_as_relay_all_exchanges_complete_with_unique_addresses(
    net: BootNet, server: Callable[..., Any], etcd_store: EtcdStore, keys: Keys
) -> None:
    """ISC perfdhcp (given the server address it acts as a relay, giaddr 10.7.0.2): 300 DORA
    exchanges from 30 clients at 150/s; every one completes, each client keeps one address, no
    address goes to two clients, and the leases are in etcd."""
    svc = await server()
    proc = await asyncio.create_subprocess_exec(
        *net.r.cmd("perfdhcp", "-4", "-r", "150", "-n", "300", "-R", "30",
                   "-W", "1000000", "-l", "10.7.0.2", "10.9.0.1"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out = (await asyncio.wait_for(proc.communicate(), 60))[0].decode()
    for section in ("DISCOVER-OFFER", "REQUEST-ACK"):
        part = out.split(f"Statistics for: {section}", 1)[1]
        assert "sent packets: 300" in part and "received packets: 300" in part, out
        assert "rejected leases: 0" in part, out
    leases = svc.leases()
    assert 0 < len(leases) <= 30 and len({x["ip"] for x in leases}) == len(leases)
    assert all(x["ip"].startswith("10.7.0.") for x in leases)
    kvs, _ = await etcd_store.get_prefix(keys.leases_prefix)
    assert sorted(kv.value["ip"] for kv in kvs) == sorted(x["ip"] for x in leases)
