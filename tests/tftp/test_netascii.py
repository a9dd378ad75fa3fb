"""netascii converted while sent (never the whole file in memory), checked against the
whole-file conversion at every offset the sender may ask for."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from regional_client.core.errors import ForbiddenError
from regional_client.tftp.source import MemoryData, NetasciiData, RootSource, to_netascii


def _text(n: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.choice(b"ab\r\n\r\nxyz \t") for _ in range(n))


def test_every_offset_matches_the_whole_conversion() -> None:
    raw = _text(3 * NetasciiData.STEP + 1234)
    want = to_netascii(raw)
    data = NetasciiData(MemoryData("t.cfg", raw))
    assert data.size == len(want)
    rng = random.Random(1)
    for _ in range(400):
        off = rng.randrange(0, len(want) + 10)
        buf = bytearray(rng.choice([512, 1468, 8192, 65464]))
        n = data.read_into(memoryview(buf), off)
        assert bytes(buf[:n]) == want[off : off + len(buf)]
    # the sender's own pattern: blocks in order (each step converted once)
    out, off = bytearray(), 0
    while True:
        buf = bytearray(1468)
        n = data.read_into(memoryview(buf), off)
        out += buf[:n]
        off += n
        if n < len(buf):
            break
    assert bytes(out) == want


def test_memory_is_an_offset_per_step(tmp_path: Path) -> None:
    f = tmp_path / "big.txt"
    f.write_bytes(b"line\n" * (4 * 1024 * 1024 // 5))
    data = NetasciiData(RootSource(tmp_path).open(b"big.txt", ("127.0.0.1", 1)))
    assert len(data._marks) == 4 * 1024 * 1024 // NetasciiData.STEP + 1
    buf = bytearray(65464)
    data.read_into(memoryview(buf), 0)
    assert len(data._cached[1]) <= 2 * NetasciiData.STEP  # one converted step held
    data.close()


def test_size_limit() -> None:
    NetasciiData(MemoryData("a", b"x" * 1000), max_size=1000)
    with pytest.raises(ForbiddenError, match="octet"):
        NetasciiData(MemoryData("a", b"x" * 1001), max_size=1000)
