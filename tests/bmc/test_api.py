"""Admin API: GET/POST /api/v1/admin/bmc/{sn}/power against the IPMI simulator."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from regional_client.api.app import create_app
from regional_client.api.auth import AdminAuth, hash_token
from regional_client.config import AdminToken, config_from_dict
from regional_client.core.audit import Audit
from regional_client.core.metrics import Metrics
from regional_client.drivers.bmc.api import router
from regional_client.drivers.bmc.controller import BmcController
from regional_rack.ipmi_sim import SimBmc
from tests.bmc.conftest import FAST, PASSWORD, USER

TOKEN = "admin-token-for-tests"


@pytest.fixture
async def api(
    tmp_path: Path, sim_bmc: SimBmc
) -> AsyncIterator[tuple[httpx.AsyncClient, Path, dict[str, Any]]]:
    cfg = config_from_dict({"idc": "t1", "bmc": FAST}, env={})
    cfg.api.admin_tokens = [AdminToken(name="ops", sha256=hash_token(TOKEN))]
    audit_path = tmp_path / "audit.jsonl"
    audit = Audit(audit_path, "t1")
    metrics = Metrics("t1")
    ctl = BmcController(cfg.bmc, metrics, audit)
    tasks: dict[str, Any] = {
        "SN1": {
            "sn": "SN1",
            "bmc": {
                "ip": "127.0.0.1",
                "port": sim_bmc.port,
                "username": USER,
                "password": PASSWORD,
                "type": "ipmi",
            },
        },
        "SN-NOBMC": {"sn": "SN-NOBMC", "bmc": {}},
    }
    auth = AdminAuth(cfg.api.admin_tokens, audit)
    app = create_app(metrics, routers=[router(ctl, tasks.get, auth, audit)])
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    yield client, audit_path, tasks
    await client.aclose()
    audit.close()


async def test_get_and_post_power(api, sim_bmc: SimBmc) -> None:
    client, audit_path, _ = api
    r = await client.get("/api/v1/admin/bmc/SN1/power")
    assert r.status_code == 200, r.text
    assert r.json() == {"sn": "SN1", "bmc": f"ipmi://127.0.0.1:{sim_bmc.port}", "power": "off"}

    r = await client.post("/api/v1/admin/bmc/SN1/power", json={"action": "reset"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["power"] == "on" and body["changed"] and body["note"] == "was off: powered on"
    assert sim_bmc.state.power_on

    r = await client.post("/api/v1/admin/bmc/SN1/power", json={"action": "cycle"})
    assert r.status_code == 200 and sim_bmc.state.power_offs == 1
    r = await client.post("/api/v1/admin/bmc/SN1/power", json={"action": "off"})
    assert r.json()["changed"] and not sim_bmc.state.power_on

    recs = [json.loads(line) for line in audit_path.read_text().splitlines()]
    bmc_recs = [x for x in recs if x["action"].startswith("bmc.")]
    assert [x["action"] for x in bmc_recs] == [
        "bmc.power_status",
        "bmc.power_reset",
        "bmc.power_cycle",
        "bmc.power_off",
    ]
    assert all(x["actor"] == "ops" and x["sn"] == "SN1" and x["result"] == "ok" for x in bmc_recs)
    assert PASSWORD not in audit_path.read_text()


async def test_boot_endpoints(api, sim_bmc: SimBmc) -> None:
    client, _, _ = api
    r = await client.post(
        "/api/v1/admin/bmc/SN1/boot", json={"device": "pxe", "persistent": True, "uefi": True}
    )
    assert r.status_code == 200, r.text
    assert r.json()["device"] == "pxe" and sim_bmc.state.boot_device == "pxe"
    r = await client.get("/api/v1/admin/bmc/SN1/boot")
    assert r.json() == {
        "sn": "SN1",
        "bmc": f"ipmi://127.0.0.1:{sim_bmc.port}",
        "device": "pxe",
        "persistent": True,
        "uefi": True,
    }


async def test_errors(api, sim_bmc: SimBmc) -> None:
    client, audit_path, tasks = api
    r = await client.get("/api/v1/admin/bmc/UNKNOWN/power")
    assert r.status_code == 404 and "UNKNOWN" in r.json()["message"]
    r = await client.get("/api/v1/admin/bmc/SN-NOBMC/power")
    assert r.status_code == 404
    r = await client.post("/api/v1/admin/bmc/SN1/power", json={"action": "explode"})
    assert r.status_code == 422
    r = await client.get("/api/v1/admin/bmc/SN1/power", headers={"Authorization": "Bearer no"})
    assert r.status_code == 401
    assert not sim_bmc.state.history  # nothing reached the BMC

    tasks["SN1"]["bmc"]["password"] = "not-it"
    r = await client.post("/api/v1/admin/bmc/SN1/power", json={"action": "on"})
    assert r.status_code == 502 and r.json()["error"] == "driver_auth_failed"
    assert f"ipmi://127.0.0.1:{sim_bmc.port}" in r.json()["message"]

    tasks["SN1"]["bmc"]["password"] = PASSWORD
    sim_bmc.state.ignore_boot_changes = True
    r = await client.post("/api/v1/admin/bmc/SN1/boot", json={"device": "disk"})
    assert r.status_code == 502 and "ignored" in r.json()["message"]
    text = audit_path.read_text()
    assert '"result": "no BMC known for server UNKNOWN' in text
