"""HTTP boot: files with Range/HEAD through a real uvicorn + curl, per-MAC iPXE, path safety."""

from __future__ import annotations

import asyncio
import hashlib
import os
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from regional_client.core.metrics import Metrics
from regional_client.httpboot.response import parse_range
from regional_client.httpboot.router import router
from regional_client.pxe.service import PxeService
from regional_client.tasks.boot_activity import BootActivity
from tests.pxe.conftest import make_gen, task
from tests.tftp.test_paths import ATTACKS, SECRET

SIZE = 20 * 1024 * 1024


@dataclass
class Boot:
    """What the HTTP boot routes are built with, for the tests to look at."""

    metrics: Metrics
    pxe: PxeService
    boot_activity: BootActivity


@pytest.fixture(scope="module")
def payload() -> bytes:
    return os.urandom(SIZE)


@pytest.fixture
def boot_root(tmp_path: Path, payload: bytes) -> Path:
    root = tmp_path / "tftpboot"
    (root / "initrds").mkdir(parents=True)
    (root / "initrds" / "big.img").write_bytes(payload)
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (root / "link_out").symlink_to("../secret.txt")
    (root / ".secret").write_bytes(SECRET)
    return root


@pytest.fixture
async def server(boot_root: Path) -> AsyncIterator[tuple[str, Boot]]:
    svc = PxeService(make_gen(boot_root))
    await svc.start()
    rt = Boot(Metrics("dcH"), svc, BootActivity())
    ipxe_dir = str(svc.generator.ipxe_dir.relative_to(svc.generator.root))
    app = FastAPI()
    app.include_router(
        router(boot_root, rt.metrics, prefix="/boot", ipxe_dir=ipxe_dir, activity=rt.boot_activity)
    )
    srv = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    task_ = asyncio.create_task(srv.serve())
    for _ in range(500):  # uvicorn offers no started event
        if srv.started:
            break
        await asyncio.sleep(0.02)
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", rt
    srv.should_exit = True
    await task_


async def curl(*args: str) -> tuple[int, bytes, bytes]:
    p = await asyncio.create_subprocess_exec(
        "curl", "-sS", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(p.communicate(), 60)
    finally:
        if p.returncode is None:
            p.kill()
            await p.wait()
    return p.returncode or 0, out, err


async def status_of(url: str, *args: str) -> int:
    _rc, out, _ = await curl("-o", "/dev/null", "-w", "%{http_code}", *args, url)
    return int(out)


async def test_large_file_byte_identical(server: tuple[str, Boot], payload: bytes) -> None:
    base, rt = server
    rc, out, err = await curl(f"{base}/boot/initrds/big.img")
    assert rc == 0, err
    assert hashlib.sha256(out).digest() == hashlib.sha256(payload).digest()
    text = rt.metrics.render().decode()
    assert 'regional_client_http_boot_requests_total{file="initrds/big.img",idc="dcH"} 1.0' in text
    assert 'regional_client_http_boot_bytes_sent_total{idc="dcH"} 2.097152e+07' in text


async def test_ranges(server: tuple[str, Boot], payload: bytes) -> None:
    base, _ = server
    url = f"{base}/boot/initrds/big.img"
    for rng, want in [
        ("0-99", payload[:100]),
        ("100-", payload[100:]),
        ("-4096", payload[-4096:]),
        (f"{SIZE - 10}-{SIZE + 100}", payload[-10:]),
        ("5000000-7000000", payload[5000000:7000001]),
    ]:
        rc, out, _ = await curl("-r", rng, url)
        assert rc == 0 and out == want, rng
    # curl resume (-C) uses Range too
    rc, hdrs, _ = await curl("-D", "-", "-o", "/dev/null", "-r", "0-0", url)
    assert b"206" in hdrs.split(b"\r\n")[0]
    assert f"content-range: bytes 0-0/{SIZE}".encode() in hdrs.lower()
    assert await status_of(url, "-r", f"{SIZE}-") == 416
    assert await status_of(url, "-r", "0-1,5-9") == 200  # several ranges: whole file
    assert await status_of(url, "-r", "0-9", "-H", 'If-Range: "stale"') == 200


async def test_head_and_validators(server: tuple[str, Boot]) -> None:
    base, _ = server
    url = f"{base}/boot/initrds/big.img"
    _rc, head, _ = await curl("-I", url)
    lines = dict(
        line.split(": ", 1) for line in head.decode().lower().splitlines()[1:] if ": " in line
    )
    assert lines["content-length"] == str(SIZE) and lines["accept-ranges"] == "bytes"
    etag = lines["etag"]
    assert await status_of(url, "-H", f"If-None-Match: {etag}") == 304
    assert await status_of(url, "-r", "0-9", "-H", f"If-Range: {etag}") == 206


async def test_ipxe_per_mac_and_default(server: tuple[str, Boot]) -> None:
    base, rt = server
    await rt.pxe.generate(task(mac="52:54:00:12:34:56"))
    for spelling in (
        "52:54:00:12:34:56",
        "52-54-00-12-34-56",
        "525400123456",
        "52:54:00:12:34:56".upper(),
    ):
        rc, out, _ = await curl("-f", f"{base}/boot/ipxe/{spelling}")
        assert rc == 0 and out.startswith(b"#!ipxe\n") and b"sn=SN001" in out, spelling
    rc, out, _ = await curl("-f", f"{base}/boot/ipxe/52:54:00:00:00:01")
    assert rc == 0 and b"exit" in out and b"sn=" not in out  # default: local boot
    rc, out, _ = await curl("-f", f"{base}/boot/ipxe/boot.ipxe")
    assert rc == 0 and b"chain " in out
    assert await status_of(f"{base}/boot/ipxe/nothing-here") == 404


async def test_path_attacks_over_http(server: tuple[str, Boot]) -> None:
    base, _ = server
    for raw in ATTACKS:
        quoted = urllib.parse.quote(raw, safe="/")
        _rc, out, _ = await curl("-w", "\n%{http_code}", "--path-as-is", f"{base}/boot/{quoted}")
        body, _, code = out.rpartition(b"\n")
        assert code in (b"403", b"404", b"400"), (raw, code)
        assert SECRET not in body and b"root:" not in body, raw


def test_parse_range() -> None:
    assert parse_range(None, 10) is None
    assert parse_range("bytes=0-4", 10) == (0, 5)
    assert parse_range("bytes=-3", 10) == (7, 10)
    assert parse_range("bytes=-30", 10) == (0, 10)
    assert parse_range("bytes=8-", 10) == (8, 10)
    assert parse_range("bytes=10-", 10) == "unsatisfiable"
    assert parse_range("bytes=5-2", 10) == "unsatisfiable"
    assert parse_range("bytes=-0", 10) == "unsatisfiable"
    assert parse_range("bytes=0-1,3-4", 10) is None
    assert parse_range("items=0-1", 10) is None
    assert parse_range("bytes=-", 10) is None
    # Numbers too long for int() (Python refuses more than 4,300 digits): clipped, never a 500.
    assert parse_range("bytes=" + "9" * 4301 + "-", 10) == "unsatisfiable"
    assert parse_range("bytes=0-" + "9" * 5000, 10) == (0, 10)
    assert parse_range("bytes=-" + "9" * 5000, 10) == (0, 10)
    assert parse_range("bytes=" + "0" * 19 + "1-", 10) == "unsatisfiable"  # 19 digits: clipped


async def test_huge_range_numbers_are_not_a_500(server: tuple[str, Boot]) -> None:
    base, _ = server
    url = f"{base}/boot/initrds/big.img"
    assert await status_of(url, "-H", "Range: bytes=" + "9" * 4301 + "-") == 416
    assert await status_of(url, "-H", "Range: bytes=0-" + "9" * 4301) == 206  # all of it


async def test_files_alias(server: tuple[str, Boot], payload: bytes) -> None:
    base, _ = server
    rc, out, _ = await curl("-f", "-r", "0-9", f"{base}/boot/files/initrds/big.img")
    assert rc == 0 and out == payload[:10]
    assert await status_of(f"{base}/boot/files/../secret.txt", "--path-as-is") in (403, 404)


async def test_boot_activity_by_mac_and_by_leased_address(server: tuple[str, Boot]) -> None:
    """What the workflow's boot-stall check reads: a per-MAC script names its server; any other
    file is attributed through the address our DHCP gave it (127.0.0.1 here)."""
    base, rt = server
    mac, other = "52:54:00:12:34:56", "52:54:00:aa:bb:cc"
    assert rt.boot_activity.last(mac) is None
    assert (await curl("-f", f"{base}/boot/ipxe/52-54-00-12-34-56"))[0] == 0
    first = rt.boot_activity.last(mac)
    assert first is not None
    assert (await curl("-f", "-r", "0-9", f"{base}/boot/initrds/big.img"))[0] == 0
    assert rt.boot_activity.last(other) is None  # 127.0.0.1 is nobody's lease yet
    rt.boot_activity.assigned(other, "127.0.0.1")
    before = rt.boot_activity.last(other)
    await asyncio.sleep(0.01)
    assert (await curl("-f", "-r", "0-9", f"{base}/boot/initrds/big.img"))[0] == 0
    assert (rt.boot_activity.last(other) or 0) > (before or 0)
