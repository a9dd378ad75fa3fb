"""Transfers through a relay that drops and duplicates datagrams still complete correctly."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from regional_client.tftp.client import fetch
from tests.tftp.conftest import ServerFactory
from tests.tftp.relay import LossyRelay

SIZE = 3 * 1024 * 1024 + 77


@pytest.fixture
def lossy_file(root: Path) -> str:
    data = os.urandom(SIZE)
    (root / "lossy.bin").write_bytes(data)
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("drop", "dup", "blksize", "window"),
    [(13, 0, 1468, 8), (0, 7, 1468, 8), (11, 5, 8192, 16), (17, 9, 512, 1)],
    ids=["drop13-win8", "dup7-win8", "drop11-dup5-win16", "drop17-dup9-lockstep"],
)
async def test_own_client_through_lossy_relay(
    tftp_server: ServerFactory, lossy_file: str, drop: int, dup: int, blksize: int, window: int
) -> None:
    server = await tftp_server(retransmit_timeout="100ms", retries=20)
    assert server.address is not None
    relay = LossyRelay(server.address, drop_every=drop, dup_every=dup)
    host, port = await relay.start()
    try:
        size = SIZE if window > 1 else SIZE // 24
        name = "lossy.bin" if window > 1 else "small-lossy.bin"
        if window == 1:
            data = (server.config.root_dir / "lossy.bin").read_bytes()[:size]
            (server.config.root_dir / name).write_bytes(data)
            want = hashlib.sha256(data).hexdigest()
        else:
            want = lossy_file
        r = await fetch(
            host, port, name, blksize=blksize, windowsize=window, timeout=0.2, retries=30
        )
    finally:
        relay.close()
    assert r.size == size and r.sha256 == want
    assert relay.stats.dropped + relay.stats.duplicated > 10
    # no Sorcerer's Apprentice: duplicates never make the server resend the whole file again
    await asyncio.sleep(0.05)


async def test_curl_through_lossy_relay(
    tftp_server: ServerFactory, root: Path, tmp_path: Path
) -> None:
    data = os.urandom(400 * 1024)
    (root / "curl-lossy.bin").write_bytes(data)
    server = await tftp_server(retransmit_timeout="100ms", retries=30)
    assert server.address is not None
    relay = LossyRelay(server.address, drop_every=29, dup_every=11)
    host, port = await relay.start()
    out = tmp_path / "out"
    try:
        proc = await asyncio.create_subprocess_exec(
            "curl", "-sS", "--tftp-blksize", "1468", "-o", str(out),
            f"tftp://{host}:{port}/curl-lossy.bin",
        )  # fmt: skip
        try:
            assert await asyncio.wait_for(proc.wait(), 120) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    finally:
        relay.close()
    assert out.read_bytes() == data
    assert relay.stats.dropped > 5 and relay.stats.duplicated > 5


async def test_duplicated_acks_do_not_inflate_traffic(
    tftp_server: ServerFactory, lossy_file: str
) -> None:
    """Every client datagram duplicated: the server must not answer each copy (RFC 1123)."""
    server = await tftp_server(retransmit_timeout="1s")
    assert server.address is not None
    relay = LossyRelay(server.address, dup_every=1)
    host, port = await relay.start()
    sent: list[int] = []
    server.on_transfer_done = lambda t: sent.append(t.session.stats.bytes_sent)
    try:
        r = await fetch(host, port, "lossy.bin", blksize=1468, timeout=1.0)
    finally:
        relay.close()
    assert r.sha256 == lossy_file
    for _ in range(100):
        if sent:
            break
        await asyncio.sleep(0.01)
    assert sent and sent[0] < SIZE * 1.05, sent
