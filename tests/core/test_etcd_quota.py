"""Unauthenticated input cannot fill etcd; a full etcd (NOSPACE) shows in health.

Two real etcd servers with a 16 MiB space quota (``--quota-backend-bytes``). The same flood —
400 discovery reports of 64 KiB (the largest inventory accepted) for new serials from 40
loopback addresses — is sent to a regional client with the default limits and to one with the
etcd-protecting limits switched off: the first stays far below the quota, the second reaches
NOSPACE, and its health says ``degraded`` with the alarm.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx

from regional_client.daemon.server import RegionalClient
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from tests.helpers.etcd import EtcdProcess
from tests.helpers.regional import make_config, started

QUOTA = 16 * 1024 * 1024
SOURCES, PER_SOURCE = 40, 10
HARDWARE = {"x": "a" * (65536 - len('{"x":""}'))}  # 64 KiB exactly


async def _flood(rc: RegionalClient) -> Counter[int]:
    url = f"http://127.0.0.1:{rc.api_port}/api/v1/report"

    async def source(i: int) -> list[int]:
        transport = httpx.AsyncHTTPTransport(local_address=f"127.0.30.{i + 1}")
        async with httpx.AsyncClient(transport=transport, timeout=30) as http:
            codes = []
            for j in range(PER_SOURCE):
                body = {"sn": f"F{i:02d}{j:02d}", "mac": "52:54:00:00:30:01", "hardware": HARDWARE}
                codes.append((await http.post(url, json=body)).status_code)
            return codes

    results = await asyncio.gather(*(source(i) for i in range(SOURCES)))
    return Counter(c for codes in results for c in codes)


async def _stored_bytes(store: EtcdStore, keys: Keys) -> int:
    kvs, _ = await store.get_prefix(keys.servers_prefix)
    return sum(len(str(kv.value)) for kv in kvs)


async def _run(tmp: Path, idc: str, **agent: object) -> tuple[Counter[int], int, list[str], dict]:
    etcd = EtcdProcess(tmp / "etcd", ("--quota-backend-bytes", str(QUOTA)))
    etcd.start()
    rc = None
    store = EtcdStore([etcd.endpoint], dial_timeout=3, request_timeout=5)
    try:
        cfg = make_config(idc, etcd.endpoint, tmp / "rc", api={
            "listen_addr": "127.0.0.1", "admin": {"port": 0}, "agent": agent})  # fmt: skip
        rc = await started(cfg)
        await store.connect()
        codes = await _flood(rc)
        stored = await _stored_bytes(store, Keys(idc))
        alarms = await store.alarms()
        async with httpx.AsyncClient() as http:
            health = (await http.get(f"http://127.0.0.1:{rc.api_port}/api/v1/health")).json()
        return codes, stored, alarms, health
    finally:
        if rc is not None:
            await rc.stop()
        await store.close()
        etcd.stop()


async def test_default_limits_keep_a_flood_far_from_the_quota(tmp_path: Path, idc: str) -> None:
    codes, stored, alarms, health = await _run(tmp_path, idc)
    assert alarms == [] and health["status"] == "ok" and health["etcd"]["alarms"] == []
    # The discovery write budget: 1 MiB burst + 32 KiB/s for the few seconds of the flood.
    assert stored < 2 * 1024 * 1024, stored
    assert codes[200] <= 30 and codes[429] >= 350, codes  # the rest waited their turn


async def test_without_limits_the_same_flood_fills_etcd_and_health_says_so(
    tmp_path: Path, idc: str
) -> None:
    codes, _stored, alarms, health = await _run(
        tmp_path, idc, report_rate=0, discovered_bytes_per_second=0, max_discovered=100000
    )
    assert any(a.startswith("NOSPACE@") for a in alarms), (alarms, codes)
    assert codes[503] > 0  # writes refused by etcd
    assert health["status"] == "degraded" and health["etcd"]["alarms"] == alarms
