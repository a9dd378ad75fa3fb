"""Admin API for boot configs: list, show and delete per-MAC PXE configs (audited)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from regional_client.api.auth import AdminAuth
from regional_client.core.audit import Audit
from regional_client.core.errors import NotFound
from regional_client.core.ids import normalize_mac
from regional_client.pxe.service import PxeService

__all__ = ["router"]


def router(svc: PxeService, auth: AdminAuth, audit: Audit) -> APIRouter:
    r = APIRouter(tags=["pxe"])

    @r.get("/admin/pxe/configs")
    async def list_configs(actor: str = Depends(auth)) -> dict[str, Any]:
        configs = await svc.list()
        audit.record(actor, "pxe.configs.list", "pxe", count=len(configs))
        return {"configs": configs, "default_action": svc.generator.config.default_action}

    @r.get("/admin/pxe/config/{mac}")
    async def get_config(mac: str, actor: str = Depends(auth)) -> dict[str, Any]:
        try:
            mac = normalize_mac(mac)
            info = await svc.get(mac)
        except Exception as e:
            audit.record(actor, "pxe.config.get", mac, result=str(e))
            raise
        audit.record(actor, "pxe.config.get", mac, sn=info.get("sn"))
        return info

    @r.delete("/admin/pxe/config/{mac}")
    async def delete_config(mac: str, actor: str = Depends(auth)) -> dict[str, Any]:
        try:
            mac = normalize_mac(mac)
        except Exception as e:
            audit.record(actor, "pxe.config.delete", mac, result=str(e))
            raise
        removed = await svc.remove(mac)
        if not removed:
            audit.record(actor, "pxe.config.delete", mac, result="not found")
            raise NotFound(f"no PXE config for {mac}", mac=mac)
        names = [str(p.relative_to(svc.generator.root)) for p in removed]
        audit.record(actor, "pxe.config.delete", mac, files=names)
        return {"mac": mac, "removed": names}

    return r
