"""Core admin routes: tasks as this instance sees them (component routers add the rest)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from regional_client.api.auth import AdminAuth
from regional_client.core.audit import Audit
from regional_client.core.errors import NotFound
from regional_client.core.ids import check_sn
from regional_client.core.tokens import redact_task
from regional_client.model import Task
from regional_client.tasks.audit_trail import AuditTrail
from regional_client.tasks.cache import Cache


def redacted(task: Task) -> dict[str, Any]:
    """A task for display: the agent token and BMC password are never shown."""
    data = redact_task(task.to_json())
    bmc = data.get("bmc") or {}
    if bmc.get("password"):
        bmc["password"] = "***"
    return data


def summary(task: Task) -> dict[str, Any]:
    running = next((s.name for s in task.steps if s.status == "running"), None)
    return {
        "sn": task.sn,
        "mac": task.mac,
        "status": task.status.value,
        "step": running,
        "progress": task.progress.percent,
        "message": task.progress.message,
        "error": task.error,
        "updated_at": task.updated_at,
    }


def router(cache: Cache, trail: AuditTrail, auth: AdminAuth, audit: Audit) -> APIRouter:
    r = APIRouter(tags=["admin"])

    @r.get("/admin/tasks")
    async def list_tasks(status: str | None = None, actor: str = Depends(auth)) -> Any:
        audit.record(actor, "tasks.list", "tasks")
        tasks = [e.task for e in cache.tasks.values()]
        if status:
            tasks = [t for t in tasks if t.status.value == status]
        return {
            "tasks": [summary(t) for t in sorted(tasks, key=lambda t: t.sn)],
            "invalid": cache.invalid,
        }

    @r.get("/admin/tasks/{sn}")
    async def show_task(sn: str, actor: str = Depends(auth)) -> Any:
        task = cache.get_task(sn)
        audit.record(actor, "tasks.show", sn, result="ok" if task else "not found", sn=sn)
        if task is None:
            raise NotFound(f"no task for serial {sn!r}", sn=sn)
        return redacted(task)

    @r.get("/admin/tasks/{sn}/audit")
    async def task_audit(sn: str, actor: str = Depends(auth)) -> Any:
        check_sn(sn)
        audit.record(actor, "tasks.audit", sn)  # no sn field: reading is not part of the trail
        return {"sn": sn, "records": await trail.read(sn)}

    return r
