"""Admin API routes of the DHCP component, through the app factory (auth, audit, errors)."""

from __future__ import annotations

from pathlib import Path

import httpx

from regional_client.api.app import create_app
from regional_client.api.auth import AdminAuth, hash_token
from regional_client.config import config_from_dict
from regional_client.core.audit import Audit
from regional_client.dhcp.api import router

from .conftest import ServiceFactory

MAC = "52:54:00:bb:00:01"
AUTH = {"Authorization": "Bearer s3cret"}


async def test_admin_routes(loopback_service: ServiceFactory, tmp_path: Path) -> None:
    svc = await loopback_service()
    cfg = config_from_dict(
        {
            "idc": svc.metrics.idc,
            "api": {"admin_tokens": [{"name": "ops", "sha256": hash_token("s3cret")}]},
        },
        env={},
    )
    audit = Audit(tmp_path / "audit.log", cfg.idc)
    svc.audit = audit  # as build_dhcp wires it
    auth = AdminAuth(cfg.api.admin_tokens, audit)
    app = create_app(svc.metrics, routers=[router(svc, auth, audit)])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        assert (await c.get("/api/v1/admin/dhcp/leases")).status_code == 401
        r = await c.post(
            "/api/v1/admin/dhcp/binding", headers=AUTH, json={"mac": MAC, "ip": "127.0.0.40"}
        )
        assert r.status_code == 201 and r.json()["ip"] == "127.0.0.40"
        r = await c.post(
            "/api/v1/admin/dhcp/binding",
            headers=AUTH,
            json={"mac": "52:54:00:bb:00:02", "ip": "127.0.0.40"},
        )
        assert r.status_code == 409 and "already bound" in r.json()["message"]
        r = await c.post(
            "/api/v1/admin/dhcp/binding", headers=AUTH, json={"mac": "nope", "ip": "127.0.0.41"}
        )
        assert r.status_code == 422 and "MAC" in r.json()["message"]
        r = await c.post(
            "/api/v1/admin/dhcp/binding", headers=AUTH, json={"mac": MAC, "ip": "8.8.8.8"}
        )
        assert r.status_code == 422 and "served subnet" in r.json()["message"]
        r = await c.post("/api/v1/admin/dhcp/binding", headers=AUTH, json={"mac": MAC})
        assert r.status_code == 422
        r = await c.get("/api/v1/admin/dhcp/leases", headers=AUTH)
        assert r.status_code == 200
        assert r.json()["bindings"][0]["mac"] == MAC and r.json()["leases"] == []
        r = await c.delete(f"/api/v1/admin/dhcp/binding/{MAC.upper()}", headers=AUTH)
        assert r.status_code == 200
        r = await c.delete(f"/api/v1/admin/dhcp/binding/{MAC}", headers=AUTH)
        assert r.status_code == 404
        r = await c.delete("/api/v1/admin/dhcp/binding/xyz", headers=AUTH)
        assert r.status_code == 422
    audit.close()
    audit = (tmp_path / "audit.log").read_text()
    assert audit.count('"action": "dhcp.binding.add"') == 4
    assert audit.count('"action": "dhcp.binding.delete"') == 3
    assert '"action": "dhcp.leases.list"' in audit and '"actor": "ops"' in audit
