"""FastAPI dependencies shared by every router: the runtime, admin and agent authentication.

Routers of every component use them the same way::

    from regional_client.api.deps import AdminActor, RuntimeDep

    @router.get("/admin/dhcp/leases")
    async def leases(actor: AdminActor, rt: RuntimeDep) -> ...:
        rt.audit.record(actor, "dhcp.leases.list", "dhcp")

``AdminActor`` resolves to the name of the admin token used (401 without a valid one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from regional_client.api.auth import bearer, match_admin
from regional_client.core.errors import AuthError

if TYPE_CHECKING:
    from regional_client.daemon.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def require_admin(request: Request) -> str:
    rt = get_runtime(request)
    token = bearer(request)
    name = match_admin(token, rt.config.api.admin_tokens)
    if name is None:
        rt.audit.record(
            "anonymous",
            "auth.denied",
            request.url.path,
            result="invalid admin token",
            method=request.method,
            client=request.client.host if request.client else None,
        )
        raise AuthError("invalid admin token")
    request.state.actor = name
    return name


RuntimeDep = Annotated[Any, Depends(get_runtime)]
AdminActor = Annotated[str, Depends(require_admin)]
