"""Every bound on what the install network may send, at its number and one past it.

A real regional client (real etcd, real uvicorn, real sockets on loopback). Sources are told
apart by loopback addresses of their own (127.0.x.y). The limits are set small so each test
reaches them quickly; the code paths are the production ones.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from regional_client.daemon.server import RegionalClient
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from tests.helpers.etcd import EtcdProcess
from tests.helpers.regional import make_config, started

LIMITS = {
    "max_body_bytes": 65536, "max_header_bytes": 4096, "header_timeout": "1s",
    "body_timeout": "2s", "max_connections": 30, "max_connections_per_source": 5,
}  # fmt: skip
AGENT = {
    # Slow refills: the bursts below are used up well before a refill even on a loaded machine.
    "max_hardware_bytes": 2048, "report_rate": 0.25, "report_burst": 4, "refusal_rate": 0.05,
    "refusal_burst": 3, "max_discovered": 6, "discovered_refresh": "1h",
}  # fmt: skip


@pytest.fixture
async def rc(etcd_server: EtcdProcess, idc: str, tmp_path: Path) -> AsyncIterator[RegionalClient]:
    cfg = make_config(idc, etcd_server.endpoint, tmp_path, api={"listen_addr": "127.0.0.1",
                      "admin": {"port": 0}, "limits": LIMITS, "agent": AGENT})  # fmt: skip
    client = await started(cfg)
    yield client
    await client.stop()


def _hits(rc: RegionalClient, limit: str) -> float:
    text = rc.core.metrics.render().decode()
    rx = r'regional_client_limit_hits_total\{idc="[^"]+",limit="' + limit + r'"\} (\S+)'
    m = re.search(rx, text)
    return float(m.group(1)) if m else 0.0


async def _connect(rc: RegionalClient, source: str) -> tuple[asyncio.StreamReader, Any]:
    return await asyncio.open_connection("127.0.0.1", rc.api_port, local_addr=(source, 0))


async def _closed_soon(reader: asyncio.StreamReader, within: float) -> bool:
    try:
        data = await asyncio.wait_for(reader.read(), within)
    except (TimeoutError, ConnectionResetError):
        return False
    return data == b"" or data.startswith(b"HTTP/1.1 4")


async def _raw(rc: RegionalClient, request: bytes, source: str = "127.0.4.1") -> bytes:
    reader, writer = await _connect(rc, source)
    writer.write(request)
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


def _health(path: str = "/api/v1/health", body: str = "") -> bytes:
    head = f"POST {path}" if body else f"GET {path}"
    extra = f"Content-Length: {len(body)}\r\nContent-Type: application/json\r\n" if body else ""
    return f"{head} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n{body}".encode()


async def test_connections_per_source_and_in_total(rc: RegionalClient) -> None:
    """5 connections from one address are kept, the 6th is closed at once; another address
    still gets in; 30 in all, the 31st is closed."""
    held = [await _connect(rc, "127.0.5.1") for _ in range(5)]
    await asyncio.sleep(0.1)
    sixth, w6 = await _connect(rc, "127.0.5.1")
    assert await _closed_soon(sixth, 0.5)
    assert b" 200 " in (await _raw(rc, _health(), "127.0.5.2"))[:20]
    assert _hits(rc, "http_connections_per_source") == 1
    for i in range(5):  # 25 more from 5 other addresses: 30 open
        held += [await _connect(rc, f"127.0.6.{i + 1}") for _ in range(5)]
    await asyncio.sleep(0.1)
    over, wo = await _connect(rc, "127.0.7.1")
    assert await _closed_soon(over, 0.5)
    assert _hits(rc, "http_connections") == 1
    for _, w in held:
        w.close()
    w6.close()
    wo.close()


async def test_a_slow_head_is_cut_at_header_timeout(rc: RegionalClient) -> None:
    reader, writer = await _connect(rc, "127.0.8.1")
    t0 = time.monotonic()
    writer.write(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
    for _ in range(3):  # a byte now and then: still cut at 1 s after the connection opened
        await asyncio.sleep(0.3)
        writer.write(b"X")
    assert await _closed_soon(reader, 3)
    assert 0.9 <= time.monotonic() - t0 < 2.5
    assert _hits(rc, "http_header_timeout") == 1
    # A kept-alive connection gets a new deadline for each head.
    reader, writer = await _connect(rc, "127.0.8.2")
    for _ in range(3):
        writer.write(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        assert b" 200 " in head.split(b"\r\n")[0]
        n = int(re.search(rb"content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
        await reader.readexactly(n)
        await asyncio.sleep(0.7)  # idle between requests is the keep-alive timeout's business
    writer.close()


async def test_head_size(rc: RegionalClient) -> None:
    def req(pad: int) -> bytes:
        return (f"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                f"X-Pad: {'a' * pad}\r\n\r\n").encode()

    base = len(req(0))
    assert b" 200 " in (await _raw(rc, req(4096 - base)))[:20]  # exactly 4,096 bytes
    assert (await _raw(rc, req(4097 - base))).startswith(b"HTTP/1.1 431 ")
    assert _hits(rc, "http_header_size") == 1


async def test_body_size_by_length_and_chunked(rc: RegionalClient) -> None:
    ok = json.dumps({"sn": "BODY1", "mac": "52:54:00:00:00:01", "x": "a" * 65000})
    ok = ok[:-1] + " " * (65536 - len(ok)) + "}"
    assert len(ok) == 65536
    r = await _raw(rc, _health("/api/v1/report", ok))
    assert r.startswith(b"HTTP/1.1 200 "), r[:200]  # 64 KiB exactly: read (hardware is {})
    big = ok[:-1] + " }"
    assert (await _raw(rc, _health("/api/v1/report", big))).startswith(b"HTTP/1.1 413 ")
    chunk = b"a" * 40000
    chunked = (b"POST /api/v1/report HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
               b"Content-Type: application/json\r\n\r\n"
               + (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 2 + b"0\r\n\r\n")  # fmt: skip
    assert (await _raw(rc, chunked)).startswith(b"HTTP/1.1 413 ")
    assert _hits(rc, "http_body_size") == 2


async def test_a_slow_body_is_cut_at_body_timeout(rc: RegionalClient) -> None:
    reader, writer = await _connect(rc, "127.0.9.1")
    writer.write(b"POST /api/v1/report HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    t0 = time.monotonic()
    assert await _closed_soon(reader, 4)
    assert 1.5 <= time.monotonic() - t0 < 3.5
    assert _hits(rc, "http_body_timeout") == 1


async def _report(
    rc: RegionalClient, sn: str, hardware: Any, source: str = "127.0.10.1"
) -> httpx.Response:
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(transport=transport) as http:
        body = {"sn": sn, "mac": "52:54:00:00:00:02", "hardware": hardware}
        return await http.post(f"http://127.0.0.1:{rc.api_port}/api/v1/report", json=body)


def _hardware(size: int) -> dict[str, str]:
    """An inventory whose compact JSON is exactly ``size`` bytes."""
    return {"x": "a" * (size - len('{"x":""}'))}


async def test_hardware_size(rc: RegionalClient, etcd_store: EtcdStore, keys: Keys) -> None:
    r = await _report(rc, "HW-OK", _hardware(2048), "127.0.11.1")
    assert r.status_code == 200 and r.json()["status"] == "discovered"
    r = await _report(rc, "HW-BIG", _hardware(2049), "127.0.11.2")
    assert r.status_code == 413 and "at most 2048" in r.json()["message"]
    assert r.json()["limit"] == "agent_hardware_size"
    assert await etcd_store.get(keys.server("HW-BIG")) is None
    assert _hits(rc, "agent_hardware_size") == 1


async def test_report_rate_per_source(rc: RegionalClient) -> None:
    """Burst 4, then 1 per 4 seconds; another source is not affected."""
    codes = [(await _report(rc, f"RATE{i}", {}, "127.0.12.1")).status_code for i in range(5)]
    assert codes == [200, 200, 200, 200, 429]
    assert (await _report(rc, "RATE-OTHER", {}, "127.0.12.2")).status_code == 200
    await asyncio.sleep(4.1)
    assert (await _report(rc, "RATE0", {}, "127.0.12.1")).status_code == 200
    assert _hits(rc, "agent_report_rate") == 1


async def test_discovered_records_are_capped(
    rc: RegionalClient, etcd_store: EtcdStore, keys: Keys
) -> None:
    """6 discovered records at most: the 7th new serial gets 507; a known one is answered
    without a write (refresh interval); nothing more reaches etcd."""
    for i in range(6):
        r = await _report(rc, f"DISC{i}", {}, f"127.0.13.{i + 1}")
        assert r.status_code == 200
    r = await _report(rc, "DISC6", {}, "127.0.13.7")
    assert r.status_code == 507 and r.json()["limit"] == "agent_discovered_records"
    before = await etcd_store.revision()
    r = await _report(rc, "DISC0", {"changed": True}, "127.0.13.8")
    assert r.status_code == 200 and r.json()["status"] == "discovered"
    kvs, _ = await etcd_store.get_prefix(keys.servers_prefix)
    assert len(kvs) == 6 and max(kv.mod_revision for kv in kvs) <= before


async def test_refusals_per_source_then_429_without_audit(
    rc: RegionalClient, etcd_store: EtcdStore, keys: Keys
) -> None:
    """Bad tokens: 3 refusals audited (burst 3), then 429 and nothing written anywhere."""
    await etcd_store.put(keys.task("REF1"), {"sn": "REF1", "mac": "52:54:00:00:00:03",
                                             "status": "installing"})  # fmt: skip
    await asyncio.sleep(0.3)
    transport = httpx.AsyncHTTPTransport(local_address="127.0.14.1")
    async with httpx.AsyncClient(transport=transport) as http:
        url = f"http://127.0.0.1:{rc.api_port}/api/v1/device/getNextOperation"
        codes = [
            (await http.post(url, json={"sn": "REF1"},
                             headers={"Authorization": f"Bearer guess-{i:04d}"})).status_code
            for i in range(6)
        ]  # fmt: skip
    assert codes == [401, 401, 401, 429, 429, 429]
    audit = (Path(rc.config.state_dir) / "audit.log").read_text()
    assert audit.count('"action": "agent.refused"') == 3
    await asyncio.sleep(0.5)
    trail, _ = await etcd_store.get_prefix(keys.audit("REF1"))
    assert len(trail) == 1  # the task's trail: one record per kind of refusal per minute
    assert _hits(rc, "agent_refusals") == 3


def test_fds_limit_in_the_unit() -> None:
    unit = (Path(__file__).resolve().parents[2] / "deploy/regional-client.service").read_text()
    m = re.search(r"^LimitNOFILE=(\d+)$", unit, re.M)
    assert m and int(m.group(1)) >= 2 * 2048 + 4096  # both listeners + TFTP + etcd, room left


def test_tcp_source_addresses_work_here() -> None:
    """The tests above rely on binding 127.0.x.y as a source (Linux loopback is a /8)."""
    with socket.socket() as s:
        s.bind(("127.0.200.1", 0))
