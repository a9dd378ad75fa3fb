"""Admin API of the switch component (paths relative to ``/api/v1``).

``GET /admin/switch/ports`` lists a switch's ports with link state;
``GET /admin/switch/port/{port}`` shows one port with its configured mode and VLANs. With
several switches in the inventory the ``switch`` query parameter names one (422 otherwise).
Both read the device (one short session, queued behind any change in progress on that switch)
and write an audit record.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from regional_client.api.auth import AdminAuth
from regional_client.core.audit import Audit
from regional_client.drivers.switch.manager import SwitchManager


def router(mgr: SwitchManager, auth: AdminAuth, audit: Audit) -> APIRouter:
    r = APIRouter(tags=["switch"])

    @r.get("/admin/switch/ports")
    async def list_ports(
        switch: str | None = Query(None, max_length=63), actor: str = Depends(auth)
    ) -> dict[str, Any]:
        name = mgr.entry(switch).name
        try:
            ports = await mgr.list_ports(name)
        except Exception as exc:
            audit.record(actor, "switch.ports.list", name, result=str(exc))
            raise
        audit.record(actor, "switch.ports.list", name, count=len(ports))
        return {"switch": name, "ports": [p.to_dict() for p in ports]}

    @r.get("/admin/switch/port/{port:path}")
    async def port_status(
        port: str, switch: str | None = Query(None, max_length=63),
        actor: str = Depends(auth),
    ) -> dict[str, Any]:  # fmt: skip
        name = mgr.entry(switch).name
        try:
            st = await mgr.port_status(port, name)
        except Exception as exc:
            audit.record(actor, "switch.port.show", f"{name}/{port[:64]}", result=str(exc))
            raise
        audit.record(actor, "switch.port.show", f"{name}/{st.port}")
        remembered = mgr.remembered.get((name, st.port))
        return {
            "switch": name,
            **st.to_dict(),
            "remembered": remembered.to_dict() if remembered else None,
        }

    return r


__all__ = ["router"]
