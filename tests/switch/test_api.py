"""Admin API over HTTP (FastAPI test client) against a simulated switch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from regional_client.api.auth import AdminAuth, hash_token
from regional_client.config import Config
from regional_client.config.switch import SwitchConfig, SwitchEntry
from regional_client.core.audit import Audit
from regional_client.core.errors import ProvisionError
from regional_client.drivers.switch.api import router
from regional_client.drivers.switch.manager import SwitchManager
from regional_rack.switch_sim import SimSwitch, start_switches

TOKEN = "s3cret-admin"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, list[SimSwitch]]]:
    sims = [
        (await start_switches(1, "cisco_ios", ports=4))[0],
        (await start_switches(1, "huawei_vrp", ports=3))[0],
    ]
    inv = [
        SwitchEntry(name=f"sw{i}", type=s.vendor, host=s.host, port=s.port, password=s.password)
        for i, s in enumerate(sims)
    ]
    cfg = Config.model_validate(
        {"idc": "t1", "api": {"admin_tokens": [{"name": "ops", "sha256": hash_token(TOKEN)}]}}
    )
    cfg.switch = SwitchConfig(inventory=inv)
    audit = Audit(tmp_path / "audit.jsonl", "t1")
    mgr = SwitchManager(cfg.switch, audit=audit)
    app = FastAPI()

    @app.exception_handler(ProvisionError)
    async def _err(request: Request, exc: ProvisionError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.http_status)

    app.include_router(
        router(mgr, AdminAuth(cfg.api.admin_tokens, audit), audit), prefix="/api/v1"
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        c.headers["authorization"] = f"Bearer {TOKEN}"
        yield c, sims
    await mgr.stop()
    for s in sims:
        await s.stop()


async def test_list_ports(api: tuple[httpx.AsyncClient, list[SimSwitch]]) -> None:
    c, sims = api
    r = await c.get("/api/v1/admin/switch/ports", params={"switch": "sw1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["switch"] == "sw1"
    assert [p["port"] for p in body["ports"]] == list(sims[1].ports)


async def test_port_detail_with_slashes(api: tuple[httpx.AsyncClient, list[SimSwitch]]) -> None:
    c, sims = api
    sims[0].ports["GigabitEthernet1/0/2"].access_vlan = 30
    r = await c.get("/api/v1/admin/switch/port/Gi1/0/2", params={"switch": "sw0"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["port"], body["mode"], body["vlans"], body["status"]) == (
        "GigabitEthernet1/0/2",
        "access",
        [30],
        "up",
    )


async def test_errors(api: tuple[httpx.AsyncClient, list[SimSwitch]]) -> None:
    c, sims = api
    assert (await c.get("/api/v1/admin/switch/ports")).status_code == 422  # which switch?
    assert (await c.get("/api/v1/admin/switch/ports", params={"switch": "nope"})).status_code == 404
    r = await c.get("/api/v1/admin/switch/port/Gi1/0/1;reload", params={"switch": "sw0"})
    assert r.status_code == 422 and r.json()["field"] == "port"
    r = await c.get("/api/v1/admin/switch/port/Gi1/0/1%0Areload", params={"switch": "sw0"})
    assert r.status_code == 404  # a newline does not even match the route
    assert sims[0].commands == []
    r = await c.get("/api/v1/admin/switch/ports", params={"switch": "sw0"},
                    headers={"authorization": "Bearer wrong"})  # fmt: skip
    assert r.status_code == 401
