"""Admin API of the DHCP component (paths relative to ``/api/v1``; every call audited).

* ``GET  /admin/dhcp/leases`` — leases (active and expired, kept for reuse) and bindings;
* ``POST /admin/dhcp/binding`` — ``{mac, ip, hostname?, boot_file?}`` → 201 with the binding;
* ``DELETE /admin/dhcp/binding/{mac}`` — 200, or 404 when there is no such binding.

Validation errors are 422, an address already bound or leased to another MAC is 409. The
service writes the audit records (the same ones the workflow's calls produce).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from regional_client.api.auth import AdminAuth
from regional_client.core.audit import Audit
from regional_client.core.errors import NotFound
from regional_client.dhcp.service import DhcpService

__all__ = ["BindingIn", "router"]


class BindingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mac: str = Field(examples=["52:54:00:12:34:56"])
    ip: str = Field(examples=["10.0.0.50"])
    hostname: str | None = None
    boot_file: str | None = Field(None, description="Overrides the boot file chosen by arch")


def router(svc: DhcpService, auth: AdminAuth, audit: Audit) -> APIRouter:
    r = APIRouter(tags=["dhcp"])

    @r.get("/admin/dhcp/leases")
    async def list_leases(actor: str = Depends(auth)) -> dict[str, Any]:
        audit.record(actor, "dhcp.leases.list", "dhcp")
        return {"leases": svc.leases(), "bindings": svc.bindings()}

    @r.post("/admin/dhcp/binding", status_code=201)
    async def add_binding(body: BindingIn, actor: str = Depends(auth)) -> dict[str, Any]:
        return await svc.add_binding(
            body.mac, body.ip, body.hostname, body.boot_file, actor=actor
        )

    @r.delete("/admin/dhcp/binding/{mac}")
    async def delete_binding(mac: str, actor: str = Depends(auth)) -> dict[str, Any]:
        if not await svc.remove_binding(mac, actor=actor):
            raise NotFound(f"no DHCP binding for {mac}", mac=mac)
        return {"deleted": mac}

    return r
