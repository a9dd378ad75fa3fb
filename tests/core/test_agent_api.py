"""Flow 2 end to end over real HTTP against a real etcd, plus bad input of every kind."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from regional_client.core.tokens import token_hash
from regional_client.daemon.server import RegionalClient
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from tests.helpers.agent_session import session_token
from tests.helpers.etcd import EtcdProcess
from tests.helpers.regional import ADMIN_TOKEN, make_config, started, wait_until

MAC = "52:54:00:12:34:56"


def control_plane_task(sn: str, status: str = "approved", **extra: Any) -> dict[str, Any]:
    """A task as the control plane writes it: plain JSON, no agent session."""
    task = {
        "task_id": f"task-{sn}",
        "sn": sn,
        "mac": MAC.upper().replace(":", "-"),
        "status": status,
        "hostname": f"host-{sn.lower()}",
        "os_type": "ubuntu",
        "os_version": "22.04",
        # The install IP is the address the agent calls from (loopback here).
        "network": {"ip": "127.0.0.1", "netmask": "255.0.0.0", "gateway": "127.0.0.254"},
        "operations": ["hardware_config", "os_install"],
        "hardware_scripts": [
            {"name": "raid", "interpreter": "/bin/sh", "content": "echo raid", "timeout": 60}
        ],
        "vendor_field": {"kept": True},
    }
    task.update(extra)
    return task


@pytest.fixture
async def rc(etcd_server: EtcdProcess, idc: str, tmp_path: Path) -> AsyncIterator[RegionalClient]:
    client = await started(make_config(idc, etcd_server.endpoint, tmp_path))
    yield client
    await client.stop()


@pytest.fixture
async def http(rc: RegionalClient) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rc.api_port}/api/v1") as c:
        yield c


async def _token(rc: RegionalClient, sn: str, status: str = "installing") -> str:
    """Open an agent session (as the power step does) and claim it (the boot's first report)."""
    c = rc.core
    token = await session_token(
        c.store, c.keys, c.cache, f"http://127.0.0.1:{rc.api_port}", sn, MAC, status
    )
    await _settled(c.store)  # the audit trail writes the claim's records in the background
    return token


async def _settled(store: EtcdStore) -> None:
    rev = await store.revision()
    while True:
        await asyncio.sleep(0.3)
        now = await store.revision()
        if now == rev:
            return
        rev = now


async def _stored(store: EtcdStore, key: str) -> dict[str, Any]:
    kv = await store.get(key)
    assert kv is not None
    return kv.value


async def test_flow2_end_to_end(
    rc: RegionalClient, http: httpx.AsyncClient, etcd_store: EtcdStore, keys: Keys
) -> None:
    sn = "SN-FLOW2"
    await etcd_store.put(keys.task(sn), control_plane_task(sn))
    token = await _token(rc, sn)
    assert len(token) >= 24
    stored = await _stored(etcd_store, keys.task(sn))
    session = stored["agent_session"]
    assert token not in str(stored) and session["token_sha256"] == token_hash(token)
    assert session["ip"] == "127.0.0.1" and session["mac"] == MAC
    assert stored["vendor_field"] == {"kept": True}
    auth = {"Authorization": f"Bearer {token}"}

    r = await http.post(
        "/report", json={"sn": sn, "mac": MAC, "hardware": {"cpus": 8}}, headers=auth
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"result": "ok", "status": "installing"}  # a re-report: no new token
    server = await _stored(etcd_store, keys.server(sn))
    assert server["macs"] == [MAC] and server["hardware"] == {"cpus": 8}
    assert server["state"] == "installing" and server["task_id"] == f"task-{sn}"
    assert (await _stored(etcd_store, keys.task(sn)))["agent"]["reported_at"]

    r = await http.post("/device/isInInstallQueue", json={"sn": sn}, headers=auth)
    assert r.json() == {"result": True}

    r = await http.post("/device/getNextOperation", json={"sn": sn}, headers=auth)
    assert r.json()["operation"] == "hardware_config"

    r = await http.post("/device/getHardwareConfig", json={"sn": sn}, headers=auth)
    assert r.json() == {
        "scripts": [
            {"name": "raid", "interpreter": "/bin/sh", "content": "echo raid", "timeout": 60}
        ]
    }

    r = await http.post(
        "/progress",
        json={"sn": sn, "operation": "hardware_config", "percent": 50, "message": "half"},
        headers=auth,
    )
    assert r.json() == {"result": "ok"}

    r = await http.post(
        "/device/operationComplete",
        json={"sn": sn, "operation": "hardware_config", "success": True, "message": "raid ok"},
        headers=auth,
    )
    assert r.json() == {"result": "ok", "duplicate": False}
    task = await _stored(etcd_store, keys.task(sn))
    assert task["results"]["hardware_config"]["status"] == "done"
    assert task["progress"]["percent"] == 50  # flushed before the completion was recorded

    r = await http.post("/device/getNextOperation", json={"sn": sn}, headers=auth)
    body = r.json()
    assert body["operation"] == "os_install"
    assert body["params"]["os_type"] == "ubuntu" and body["params"]["hostname"] == "host-sn-flow2"

    r = await http.post(
        "/device/operationComplete",
        json={"sn": sn, "operation": "os_install", "success": True},
        headers=auth,
    )
    assert r.status_code == 200
    task = await _stored(etcd_store, keys.task(sn))
    assert task["results"]["os_install"]["status"] == "done"

    r = await http.post("/device/getNextOperation", json={"sn": sn}, headers=auth)
    assert r.json() == {"operation": "reboot", "params": {}}

    # Once the task leaves installing the agent API is closed to the token.
    await etcd_store.update(keys.task(sn), lambda t: {**t, "status": "completed"})
    await wait_until(lambda: rc.core.cache.get_task(sn).status == "completed")
    r = await http.post("/device/getNextOperation", json={"sn": sn}, headers=auth)
    assert r.status_code == 403 and "outside installing" in r.json()["message"]
    r = await http.post("/device/isInInstallQueue", json={"sn": sn}, headers=auth)
    assert r.status_code == 403


async def test_racing_completions_record_exactly_one(
    rc: RegionalClient, http: httpx.AsyncClient, etcd_store: EtcdStore, keys: Keys
) -> None:
    sn = "SN-RACE"
    await etcd_store.put(keys.task(sn), control_plane_task(sn))
    auth = {"Authorization": f"Bearer {await _token(rc, sn)}"}
    body = {"sn": sn, "operation": "hardware_config", "success": True}
    rs = await asyncio.gather(
        *(http.post("/device/operationComplete", json=body, headers=auth) for _ in range(8))
    )
    assert all(r.status_code == 200 for r in rs)
    assert sorted(r.json()["duplicate"] for r in rs) == [False] + [True] * 7
    task = await _stored(etcd_store, keys.task(sn))
    assert task["results"]["hardware_config"]["attempts"] == 1


async def test_failed_operation_fails_task_after_retries(
    rc: RegionalClient, http: httpx.AsyncClient, etcd_store: EtcdStore, keys: Keys
) -> None:
    sn = "SN-FAILOP"
    await etcd_store.put(keys.task(sn), control_plane_task(sn, operation_retries=1))
    auth = {"Authorization": f"Bearer {await _token(rc, sn)}"}
    fail = {"sn": sn, "operation": "hardware_config", "success": False, "message": "disk 3 bad"}
    r = await http.post("/device/operationComplete", json=fail, headers=auth)
    assert r.status_code == 200
    task = await _stored(etcd_store, keys.task(sn))
    assert task["status"] == "installing" and task["results"]["hardware_config"]["attempts"] == 1
    r = await http.post("/device/getNextOperation", json={"sn": sn}, headers=auth)
    assert r.json()["operation"] == "hardware_config" and r.json()["params"]["attempt"] == 2
    r = await http.post("/device/operationComplete", json=fail, headers=auth)
    task = await _stored(etcd_store, keys.task(sn))
    assert task["status"] == "failed" and "agent_session" not in task  # token dead
    assert "hardware_config" in task["error"] and "disk 3 bad" in task["error"]
    assert task["history"][-1]["from"] == "installing" and task["history"][-1]["to"] == "failed"


async def test_unknown_server_is_discovered(
    http: httpx.AsyncClient, etcd_store: EtcdStore, keys: Keys
) -> None:
    r = await http.post(
        "/report", json={"sn": "NEWBOX", "mac": "52:54:00:aa:bb:cc", "hardware": {"mem": 1}}
    )
    assert r.status_code == 200 and r.json()["status"] == "discovered"
    server = await _stored(etcd_store, keys.server("NEWBOX"))
    assert server["state"] == "discovered" and server["first_seen"]
    assert await etcd_store.get(keys.task("NEWBOX")) is None


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/device/getNextOperation", b"{not json", 422, "malformed JSON"),
        ("/device/getNextOperation", b"[]", 422, "body"),
        ("/device/getNextOperation", b"{}", 422, "body.sn: Field required"),
        ("/report", b'{"sn": "X1"}', 422, "body.mac: Field required"),
        ("/report", b'{"sn": "X1", "mac": "zz"}', 422, "not a MAC address"),
        ("/report", b'{"sn": "a/b", "mac": "52:54:00:aa:bb:cc"}', 422, "invalid serial"),
        ("/progress", b'{"sn": "SN-BAD", "percent": 101}', 422, "body.percent"),
        ("/device/getNextOperation", b'{"sn": "NOSUCH"}', 404, "unknown serial"),
        ("/device/getNextOperation", b'{"sn": "SN-BAD"}', 401, "invalid agent token"),
        (
            "/device/operationComplete",
            b'{"sn": "SN-BAD", "operation": "x", "success": "maybe"}',
            422,
            "body.success",
        ),
    ],
)
async def test_bad_input_is_a_clear_error_and_writes_nothing(
    rc: RegionalClient,
    http: httpx.AsyncClient,
    etcd_store: EtcdStore,
    keys: Keys,
    path: str,
    body: bytes,
    status: int,
    needle: str,
) -> None:
    await etcd_store.put(keys.task("SN-BAD"), control_plane_task("SN-BAD"))
    token = await _token(rc, "SN-BAD")
    headers = {"Content-Type": "application/json"}
    if status != 401:
        headers["Authorization"] = f"Bearer {token}"
    else:
        headers["Authorization"] = "Bearer wrong-token"
    before = await etcd_store.revision()
    r = await http.post(path, content=body, headers=headers)
    assert r.status_code == status, r.text
    payload = r.json()
    assert needle in payload["message"], payload
    assert payload["error"]
    await asyncio.sleep(0.3)
    # Nothing written but, for a refusal, its record in the task's audit trail.
    kvs, _ = await etcd_store.get_prefix(keys.root)
    changed = [kv.key for kv in kvs if kv.mod_revision > before]
    assert all(k.startswith(keys.audit_prefix) for k in changed), changed
    assert len(changed) == (1 if status in (401, 403) else 0), changed


async def test_unknown_operation_and_missing_token(
    rc: RegionalClient, http: httpx.AsyncClient, etcd_store: EtcdStore, keys: Keys
) -> None:
    sn = "SN-OPS"
    await etcd_store.put(keys.task(sn), control_plane_task(sn))
    auth = {"Authorization": f"Bearer {await _token(rc, sn)}"}
    before = await etcd_store.revision()
    r = await http.post(
        "/device/operationComplete",
        json={"sn": sn, "operation": "format_everything", "success": True},
        headers=auth,
    )
    assert r.status_code == 422 and "format_everything" in r.json()["message"]
    r = await http.post("/device/getNextOperation", json={"sn": sn})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    await asyncio.sleep(0.3)
    kvs, _ = await etcd_store.get_prefix(keys.root)
    changed = [kv.key for kv in kvs if kv.mod_revision > before]
    assert len(changed) == 1 and changed[0].startswith(keys.audit(sn)), changed  # the refusal


async def test_progress_is_coalesced(
    rc: RegionalClient, http: httpx.AsyncClient, etcd_store: EtcdStore, keys: Keys
) -> None:
    sn = "SN-PROG"
    await etcd_store.put(keys.task(sn), control_plane_task(sn))
    auth = {"Authorization": f"Bearer {await _token(rc, sn)}"}
    await asyncio.sleep(1.1)  # let the claim's writes settle outside the measured window
    writes_before = rc.core.store.writes
    for pct in range(0, 101, 2):  # 51 reports in well under a second
        r = await http.post("/progress", json={"sn": sn, "percent": pct, "message": f"p{pct}"},
                            headers=auth)  # fmt: skip
        assert r.status_code == 200
    await asyncio.sleep(1.3)
    writes = rc.core.store.writes - writes_before
    assert 1 <= writes <= 3, writes
    task = await _stored(etcd_store, keys.task(sn))
    assert task["progress"]["percent"] == 100 and task["progress"]["message"] == "p100"


async def test_health_metrics_openapi_and_admin_auth(
    rc: RegionalClient, http: httpx.AsyncClient, etcd_store: EtcdStore, keys: Keys
) -> None:
    await etcd_store.put(keys.task("SN-H"), control_plane_task("SN-H", status="pending"))
    await wait_until(lambda: rc.core.cache.get_task("SN-H"))
    assert rc.admin_port and rc.admin_port != rc.api_port
    admin = httpx.AsyncClient(base_url=f"http://127.0.0.1:{rc.admin_port}/api/v1")
    r = await http.get("/health")
    body = r.json()
    assert r.status_code == 200 and body["status"] == "ok"
    assert body["etcd"]["reachable"] and body["etcd"]["revision_lag"] == 0
    assert body["etcd"]["alarms"] == []
    # The loop monitor sees a stall: block this (shared) event loop for 1.2 s on purpose. Its
    # timer (every 0.5 s) falls due somewhere in the block: it runs at least 0.7 s late.
    await asyncio.sleep(0.6)
    time.sleep(1.2)
    await asyncio.sleep(0.6)
    assert (await http.get("/health")).json()["event_loop_lag_max_seconds"] >= 0.65
    # The install side serves agent, boot and health routes only.
    for path in ("/metrics", "/openapi.json", "/admin/tasks", "/docs"):
        assert (await http.get(path)).status_code == 404, path
    r = await admin.get("/metrics")
    assert 'regional_client_event_loop_lag_seconds_bucket{idc="' in r.text
    text = r.text
    assert f'regional_client_tasks_total{{idc="{rc.config.idc}",status="pending"}} 1.0' in text
    assert "regional_client_api_request_seconds_bucket" in text
    spec = (await admin.get("/openapi.json")).json()
    assert "/api/v1/device/getNextOperation" in spec["paths"]
    assert "NextOperationResponse" in spec["components"]["schemas"]
    schemes = spec["components"]["securitySchemes"]
    assert schemes["adminToken"]["scheme"] == schemes["agentToken"]["scheme"] == "bearer"
    op = spec["paths"]["/api/v1/admin/tasks"]["get"]
    assert op["security"] == [{"adminToken": []}] and {"401", "429"} <= set(op["responses"])
    rep = spec["paths"]["/api/v1/report"]["post"]
    assert rep["security"] == [{}, {"agentToken": []}] and {"409", "413"} <= set(rep["responses"])

    assert (await admin.get("/admin/tasks")).status_code == 401
    bad = await admin.get("/admin/tasks", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    ok = await admin.get("/admin/tasks", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert ok.status_code == 200 and ok.json()["tasks"][0]["sn"] == "SN-H"
    one = await admin.get("/admin/tasks/SN-H", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert one.status_code == 200 and "agent_token" not in one.json()
    await admin.aclose()
    lines = (Path(rc.config.state_dir) / "audit.log").read_text().splitlines()
    audit = [json.loads(x) for x in lines if x]
    assert any(a["actor"] == "ops" and a["action"] == "tasks.list" for a in audit)
    denied = [a["result"] for a in audit if a["action"] == "auth.denied"]
    assert denied == ["no bearer token", "invalid admin token"]  # both refusals audited
    assert ADMIN_TOKEN not in str(audit)
