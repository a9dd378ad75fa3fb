"""Server behaviour: concurrency, max_clients, metrics, the FileSource hook, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
from pathlib import Path
from typing import Any

from regional_client.core.metrics import Metrics
from regional_client.tftp import packets
from regional_client.tftp.client import TftpClientError, fetch
from regional_client.tftp.packets import Opcode, Request
from regional_client.tftp.source import MemoryData, ResponseData, RootSource
from regional_client.tftp.stats import metric_file_label
from tests.tftp.conftest import ServerFactory


async def test_100_concurrent_clients(
    tftp_server: ServerFactory, big_file: tuple[Path, str], tmp_path: Path
) -> None:
    """100 simultaneous 20 MiB transfers: 90 in-process UDP clients with assorted options plus
    10 curl processes; every copy byte-identical. Large blocks keep the packet count (and the
    CPU used on a shared machine) bounded."""
    server = await tftp_server(max_clients=100, max_transfers_per_source=100)  # one address
    assert server.address is not None
    host, port = server.address
    shapes = [(8192, 4), (16384, 2), (65464, 1), (4096, 8), (32768, 2)]
    own = [
        fetch(host, port, "big.bin", blksize=b, windowsize=w, timeout=2.0, retries=10)
        for b, w in (shapes[i % len(shapes)] for i in range(90))
    ]
    outs = [tmp_path / f"curl{i}" for i in range(10)]
    url = f"tftp://{host}:{port}/big.bin"
    procs = [
        await asyncio.create_subprocess_exec("curl", "-sS", "--tftp-blksize", "16384", "-o", o, url)
        for o in outs
    ]
    try:
        results = await asyncio.wait_for(asyncio.gather(*own), 300)
        rcs = await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), 300)
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
    assert all(r.sha256 == big_file[1] for r in results)
    assert rcs == [0] * 10
    for o in outs:
        assert hashlib.sha256(o.read_bytes()).hexdigest() == big_file[1]


def _rrq(name: bytes, **opts: str) -> bytes:
    return packets.encode_request(Request(Opcode.RRQ, name, "octet", opts))


async def _held(server: Any, n: int) -> None:
    for _ in range(300):
        if len(server.transfers) == n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(server.transfers)} transfers, expected {n}")


async def test_full_of_acknowledged_transfers_answers_busy(tftp_server: ServerFactory) -> None:
    """Two clients ACK the OACK, then stall: they hold real slots; a third gets "busy"."""
    server = await tftp_server(max_clients=2, retransmit_timeout="5s")
    assert server.address is not None
    stalled = []
    for i in range(2):
        s = udp(f"127.0.21.{i + 1}")
        s.sendto(_rrq(b"big.bin", blksize="1468"), server.address)
        _oack, tid = await asyncio.wait_for(asyncio.get_running_loop().sock_recvfrom(s, 2000), 3)
        s.sendto(packets.encode_ack(0), tid)  # acknowledged: a real transfer, then silence
        stalled.append(s)
    await _held(server, 2)
    try:
        await fetch(*server.address, "small.txt", timeout=1.0, retries=1)
        raise AssertionError("third client was served")
    except TftpClientError as e:
        assert e.fields["code"] == 0 and "busy" in e.message
    for s in stalled:
        s.close()


async def test_unacked_flood_does_not_lock_out_real_clients(
    tftp_server: ServerFactory, root: Path
) -> None:
    """100 read requests from 100 addresses that never ACK fill a 10-slot server; a real
    client is served at once: it takes the slot of the oldest never-acknowledged transfer."""
    m = Metrics("dcT")
    server = await tftp_server(metrics=m, max_clients=10, retransmit_timeout="5s")
    assert server.address is not None
    flood = []
    for i in range(100):
        s = udp(f"127.0.22.{i + 1}")
        s.sendto(_rrq(b"big.bin", blksize="1468"), server.address)
        flood.append(s)
    await _held(server, 10)
    t0 = asyncio.get_running_loop().time()
    got = await fetch(*server.address, "small.txt", timeout=1.0, retries=1)
    assert got.size == (root / "small.txt").stat().st_size
    assert asyncio.get_running_loop().time() - t0 < 1.0  # before: "busy" for ~6 s
    assert 'limit_hits_total{idc="dcT",limit="tftp_half_open_reclaimed"}' in m.render().decode()
    for s in flood:
        s.close()


async def test_transfers_per_source(tftp_server: ServerFactory) -> None:
    """4 transfers to one address at most; the 5th is refused; another address is served."""
    m = Metrics("dcT")
    server = await tftp_server(metrics=m, max_clients=100, retransmit_timeout="5s")
    assert server.address is not None
    held = []
    for _ in range(4):
        s = udp("127.0.23.1")
        s.sendto(_rrq(b"big.bin", blksize="1468"), server.address)
        held.append(s)
    await _held(server, 4)
    fifth = udp("127.0.23.1")
    fifth.sendto(_rrq(b"small.txt"), server.address)
    assert packets.decode(await recv(fifth)) == packets.ErrorPacket(0, "too many transfers")
    got = await fetch(*server.address, "small.txt", timeout=1.0, retries=1,
                      local_addr=("127.0.23.2", 0))  # fmt: skip
    assert got.size > 0
    text = m.render().decode()
    assert 'limit_hits_total{idc="dcT",limit="tftp_transfers_per_source"} 1.0' in text
    for s in [*held, fifth]:
        s.close()


async def recv(s: socket.socket) -> bytes:
    return await asyncio.wait_for(asyncio.get_running_loop().sock_recv(s, 2000), 3)


def udp(addr: str = "127.0.0.1") -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    s.bind((addr, 0))
    return s


async def test_raw_wrq_and_illegal_first_packet(tftp_server: ServerFactory) -> None:
    server = await tftp_server()
    assert server.address is not None
    s = udp()
    s.sendto(packets.encode_request(Request(Opcode.WRQ, b"x", "octet", {})), server.address)
    reply = packets.decode(await recv(s))
    assert reply == packets.ErrorPacket(2, "server is read-only")
    s.sendto(packets.encode_ack(1), server.address)
    reply = packets.decode(await recv(s))
    assert isinstance(reply, packets.ErrorPacket) and reply.code == 4
    s.close()


def test_metric_labels_are_normalised() -> None:
    cases = {
        "pxelinux.cfg/01-aa-bb-cc-dd-ee-ff": "pxelinux.cfg/01-<mac>",
        "grub/grub.cfg-01-aa-bb-cc-dd-ee-ff": "grub/grub.cfg-01-<mac>",
        "ipxe/01-aa-bb-cc-dd-ee-ff.ipxe": "ipxe/01-<mac>.ipxe",
        "pxelinux.cfg/C0A8640A": "pxelinux.cfg/<ip-hex>",
        "pxelinux.cfg/C0A": "pxelinux.cfg/<ip-hex>",
        "pxelinux.cfg/564d4f68-9c2b-4ddb-b9f1-0123456789ab": "pxelinux.cfg/<uuid>",
        "pxelinux.cfg/default": "pxelinux.cfg/default",
        "pxelinux.0": "pxelinux.0",
    }
    for name, label in cases.items():
        assert metric_file_label(name) == label


async def test_metrics_after_transfers(tftp_server: ServerFactory, root: Path) -> None:
    cfg = root / "pxelinux.cfg"
    for mac in ("aa-bb-cc-dd-ee-01", "aa-bb-cc-dd-ee-02"):
        (cfg / f"01-{mac}").write_text("DEFAULT local\n")
    m = Metrics("dcT")
    server = await tftp_server(metrics=m)
    assert server.address is not None
    await fetch(*server.address, "pxelinux.cfg/01-aa-bb-cc-dd-ee-01")
    await fetch(*server.address, "pxelinux.cfg/01-AA-BB-CC-DD-EE-02")
    with contextlib.suppress(TftpClientError):
        await fetch(*server.address, "../etc/passwd", retries=1)
    with contextlib.suppress(TftpClientError):
        await fetch(*server.address, "pxelinux.cfg/C0A8640A", retries=1)
    for _ in range(100):
        if not server.transfers:
            break
        await asyncio.sleep(0.01)
    text = m.render().decode()
    assert 'regional_client_tftp_requests_total{file="pxelinux.cfg/01-<mac>",idc="dcT"} 2.0' in text
    assert 'regional_client_tftp_requests_total{file="<denied>",idc="dcT"} 1.0' in text
    assert 'regional_client_tftp_requests_total{file="<not_found>",idc="dcT"} 1.0' in text
    assert 'regional_client_tftp_errors_total{idc="dcT",kind="denied"} 1.0' in text
    assert 'regional_client_tftp_bytes_sent_total{idc="dcT"} 28.0' in text
    assert 'regional_client_tftp_transfer_duration_seconds_count{idc="dcT",result="ok"} 2.0' in text


class RenderingSource:
    """A FileSource that renders one name per client and defers the rest to the root."""

    def __init__(self, root: Path) -> None:
        self.files = RootSource(root)

    def open(self, name: bytes, peer: tuple[str, int]) -> ResponseData:
        if name == b"hello.ipxe":
            return MemoryData("hello.ipxe", f"#!ipxe\necho hello {peer[0]}\n".encode())
        return self.files.open(name, peer)


async def test_file_source_hook(tftp_server: ServerFactory, root: Path) -> None:
    server = await tftp_server(source=RenderingSource(root))
    assert server.address is not None
    chunks: list[bytes] = []
    r = await fetch(*server.address, "hello.ipxe", sink=chunks.append, blksize=8)
    assert b"".join(chunks) == b"#!ipxe\necho hello 127.0.0.1\n" and r.size == 28
    r = await fetch(*server.address, "small.txt")
    assert r.size == (root / "small.txt").stat().st_size


async def test_stop_aborts_transfers(tftp_server: ServerFactory) -> None:
    server = await tftp_server(retransmit_timeout="10s")
    assert server.address is not None
    s = udp()
    s.sendto(_rrq(b"big.bin"), server.address)
    first = await recv(s)
    assert first[:4] == b"\x00\x03\x00\x01"
    await server.stop()
    reply = packets.decode(await recv(s))
    assert isinstance(reply, packets.ErrorPacket) and "shutting down" in reply.message
    assert not server.transfers and not server.running
    s.close()


async def test_wildcard_listener_replies_from_the_address_asked(
    tftp_server: ServerFactory, root: Path
) -> None:
    """Listening on 0.0.0.0, a request sent to 127.0.0.5 is answered from 127.0.0.5
    (IP_PKTINFO), as a PXE client behind a multi-homed server expects."""
    server = await tftp_server(listen_addr="0.0.0.0:0")
    assert server.address is not None
    port = server.address[1]
    s = udp()
    s.sendto(_rrq(b"small.txt"), ("127.0.0.5", port))
    loop = asyncio.get_running_loop()
    data, addr = await asyncio.wait_for(loop.sock_recvfrom(s, 2000), 3)
    assert addr[0] == "127.0.0.5" and addr[1] != port
    assert data[:4] == b"\x00\x03\x00\x01" and data[4:] == (root / "small.txt").read_bytes()
    s.sendto(packets.encode_ack(1), addr)
    s.close()


async def test_ipv6_loopback_with_curl(tftp_server: ServerFactory, root: Path) -> None:
    server = await tftp_server(listen_addr="[::1]:0")
    assert server.address is not None
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--max-time", "20", f"tftp://[::1]:{server.address[1]}/small.txt",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert proc.returncode == 0 and out == (root / "small.txt").read_bytes()


async def test_tftp_requests_and_transfers_are_reported(
    tftp_server: ServerFactory, root: Path
) -> None:
    server = await tftp_server()
    seen: list[str] = []
    server.on_activity = seen.append
    assert server.address is not None
    await fetch(*server.address, "small.txt")
    for _ in range(100):  # the transfer's end is reported once its socket is done
        if len(seen) >= 2:
            break
        await asyncio.sleep(0.01)
    assert seen == ["127.0.0.1", "127.0.0.1"]  # the read request, then the finished transfer
