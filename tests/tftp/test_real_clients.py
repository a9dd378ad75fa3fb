"""Real TFTP clients (curl, tftp-hpa, atftp) fetch a 20 MiB file byte-identical."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from regional_client.tftp.server import TftpServer
from tests.tftp.conftest import ServerFactory


async def run(*argv: str, timeout: float = 120) -> tuple[int, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:  # timed out: never leave a client behind
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def addr(s: TftpServer) -> tuple[str, int]:
    assert s.address is not None
    return s.address[0], s.address[1]


@pytest.mark.parametrize("extra", [[], ["--tftp-blksize", "1468"]], ids=["default", "blk1468"])
async def test_curl(
    tftp_server: ServerFactory, big_file: tuple[Path, str], tmp_path: Path, extra: list[str]
) -> None:
    host, port = addr(await tftp_server())
    out = tmp_path / "out"
    rc, log = await run("curl", "-sS", *extra, "-o", str(out), f"tftp://{host}:{port}/big.bin")
    assert rc == 0, log
    assert sha(out) == big_file[1]


async def test_tftp_hpa(
    tftp_server: ServerFactory, big_file: tuple[Path, str], tmp_path: Path
) -> None:
    host, port = addr(await tftp_server())
    out = tmp_path / "out"
    rc, log = await run("tftp", "-m", "binary", host, str(port), "-c", "get", "big.bin", str(out))
    assert rc == 0, log
    assert sha(out) == big_file[1]


async def test_tftp_hpa_netascii(tftp_server: ServerFactory, root: Path, tmp_path: Path) -> None:
    host, port = addr(await tftp_server())
    out = tmp_path / "out.txt"
    rc, log = await run("tftp", "-m", "ascii", host, str(port), "-c", "get", "small.txt", str(out))
    assert rc == 0, log
    assert out.read_bytes() == (root / "small.txt").read_bytes()
    # several conversion steps (64 KiB each), CR and LF both present
    text = b"".join(b"line %d\r\n\n" % i for i in range(40000))
    (root / "multi.txt").write_bytes(text)
    rc, log = await run("tftp", "-m", "ascii", host, str(port), "-c", "get", "multi.txt", str(out))
    assert rc == 0, log
    assert out.read_bytes() == text


@pytest.mark.parametrize(
    "options",
    [
        ["blksize 1468", "tsize 0", "timeout 2"],
        ["blksize 1468", "windowsize 16", "tsize 0"],
        ["blksize 512", "windowsize 8", "timeout 1"],
        ["blksize 8192", "windowsize 4", "tsize 0"],
    ],
    ids=["blk1468-tsize-timeout", "blk1468-win16", "blk512-win8", "blk8192-win4"],
)
async def test_atftp(
    tftp_server: ServerFactory, big_file: tuple[Path, str], tmp_path: Path, options: list[str]
) -> None:
    host, port = addr(await tftp_server())
    out = tmp_path / "out"
    args = [a for o in options for a in ("--option", o)]
    rc, log = await run(
        "atftp", "--verbose", *args, "-g", "-r", "big.bin", "-l", str(out), host, str(port)
    )
    assert rc == 0, log
    assert sha(out) == big_file[1]
    for o in options:  # atftp prints the options the server acknowledged
        name, value = o.split()
        if name != "tsize":
            assert f"{name} = {value}".encode() in log or f"{name}: {value}".encode() in log, log


async def test_writes_refused(tftp_server: ServerFactory, root: Path, tmp_path: Path) -> None:
    host, port = addr(await tftp_server())
    src = tmp_path / "upload.bin"
    src.write_bytes(b"x" * 1000)
    rc, log = await run(
        "tftp", "-m", "binary", host, str(port), "-c", "put", str(src), "upload.bin", timeout=30
    )
    assert b"Access violation" in log or b"read-only" in log, log
    rc, log = await run("atftp", "-p", "-l", str(src), "-r", "upload2.bin", host, str(port))
    assert rc != 0
    assert not (root / "upload.bin").exists() and not (root / "upload2.bin").exists()
