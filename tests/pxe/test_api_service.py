"""Admin API for PXE and TFTP files, and the PXE service syncing from a real etcd."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from regional_client.api.auth import AdminAuth, hash_token
from regional_client.config import AdminToken, Config, config_from_dict
from regional_client.core.audit import Audit
from regional_client.core.errors import ProvisionError
from regional_client.pxe import api as pxe_api
from regional_client.pxe.service import PxeService, wants_pxe
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from regional_client.tftp import api as tftp_api
from tests.pxe.conftest import make_gen, task

AUTH = {"Authorization": "Bearer s3cret"}


def build_app(svc: PxeService, cfg: Config, audit: Audit) -> FastAPI:
    app = FastAPI()
    app.state.pxe = svc
    auth = AdminAuth(cfg.api.admin_tokens, audit)

    @app.exception_handler(ProvisionError)
    async def _err(_: Request, e: ProvisionError) -> JSONResponse:
        return JSONResponse(e.to_dict(), status_code=e.http_status)

    app.include_router(pxe_api.router(svc, auth, audit), prefix="/api/v1")
    app.include_router(tftp_api.router(cfg.tftp.root_dir, None, auth, audit), prefix="/api/v1")
    return app


@pytest.fixture
async def client(tftp_root: Path, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    cfg = config_from_dict(
        {
            "tftp": {"root_dir": str(tftp_root)},
            "pxe": {"config_dir": str(tftp_root / "pxelinux.cfg")},
            "api": {"admin_tokens": [AdminToken(name="ops", sha256=hash_token("s3cret"))]},
        },
        {},
    )
    audit_path = tmp_path / "audit.jsonl"
    svc = PxeService(make_gen(tftp_root))
    await svc.start()
    transport = httpx.ASGITransport(app=build_app(svc, cfg, Audit(audit_path, cfg.idc)))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c, audit_path


async def test_pxe_admin_endpoints(client: tuple[httpx.AsyncClient, Path]) -> None:
    c, audit = client
    assert (await c.get("/api/v1/admin/pxe/configs")).status_code == 401
    r = await c.get("/api/v1/admin/pxe/configs", headers=AUTH)
    assert r.status_code == 200 and r.json()["configs"] == []
    svc_task = task()
    await c._transport.app.state.pxe.generate(svc_task)  # type: ignore[attr-defined]
    r = await c.get("/api/v1/admin/pxe/configs", headers=AUTH)
    assert [x["mac"] for x in r.json()["configs"]] == ["00:1a:2b:3c:4d:5e"]
    r = await c.get("/api/v1/admin/pxe/config/00-1A-2B-3C-4D-5E", headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert body["sn"] == "SN001" and "agent_token" not in body["files"]["pxelinux"]["content"]
    assert "tok-aaaa" not in r.text
    assert (await c.get("/api/v1/admin/pxe/config/nonsense", headers=AUTH)).status_code == 422
    r = await c.delete("/api/v1/admin/pxe/config/00:1a:2b:3c:4d:5e", headers=AUTH)
    assert r.status_code == 200 and len(r.json()["removed"]) == 3
    r = await c.delete("/api/v1/admin/pxe/config/00:1a:2b:3c:4d:5e", headers=AUTH)
    assert r.status_code == 404
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    actions = [(x["actor"], x["action"], x["result"]) for x in records]
    assert ("ops", "pxe.config.delete", "ok") in actions
    assert ("ops", "pxe.config.delete", "not found") in actions
    assert "tok-aaaa" not in audit.read_text()


async def test_tftp_files_endpoint(client: tuple[httpx.AsyncClient, Path], tftp_root: Path) -> None:
    c, _ = client
    (tftp_root / "kernels").mkdir()
    (tftp_root / "kernels" / "vmlinuz").write_bytes(b"k" * 100)
    (tftp_root / "outside").symlink_to("/etc")
    r = await c.get("/api/v1/admin/tftp/files", headers=AUTH)
    assert r.status_code == 200
    names = {f["name"]: f["size"] for f in r.json()["files"]}
    assert names["kernels/vmlinuz"] == 100
    assert "pxelinux.cfg/default" in names and "grub/grub.cfg" in names
    assert not any(n.startswith("outside") for n in names)
    r = await c.get("/api/v1/admin/tftp/files?prefix=kernels&limit=1", headers=AUTH)
    assert [f["name"] for f in r.json()["files"]] == ["kernels/vmlinuz"]
    r = await c.get("/api/v1/admin/tftp/files?prefix=../etc", headers=AUTH)
    assert r.status_code == 403


def test_wants_pxe() -> None:
    assert wants_pxe({"status": "installing"})
    assert not wants_pxe({"status": "approved"})
    assert not wants_pxe({"status": "completed"})
    steps = [{"name": "pxe", "status": "done"}, {"name": "cleanup", "status": "running"}]
    assert not wants_pxe({"status": "installing", "steps": steps})
    assert wants_pxe({"status": "installing", "steps": steps[:1]})


async def test_service_resyncs_from_etcd(
    etcd_store: EtcdStore, keys: Keys, tftp_root: Path
) -> None:
    gen = make_gen(tftp_root)
    gen.generate(task(sn="GONE", mac="02:00:00:00:00:99"))  # left over from a previous run
    await etcd_store.put(keys.task("A1"), task(sn="A1", mac="02:00:00:00:00:01"))
    await etcd_store.put(
        keys.task("D1"), task(sn="D1", mac="02:00:00:00:00:02", status="completed")
    )
    await etcd_store.put(keys.task("P1"), task(sn="P1", mac="02:00:00:00:00:03", status="pending"))
    await etcd_store.put(keys.server("A1"), {"sn": "A1", "macs": ["02:00:00:00:00:01"]})
    svc = PxeService(gen, store=etcd_store, keys=keys)
    await svc.start()
    assert gen.macs() == {"02:00:00:00:00:01"}
    assert svc.last_sync is not None and svc.last_sync.removed == ["02:00:00:00:00:99"]
    assert (tftp_root / "pxelinux.cfg" / "default").exists()
