"""Core admin routes: tasks as this instance sees them (component routers add the rest)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from regional_client.agentapi.tokens import redact_task
from regional_client.api.deps import AdminActor, RuntimeDep
from regional_client.core.errors import NotFound
from regional_client.model import Task


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


def router() -> APIRouter:
    r = APIRouter(tags=["admin"])

    @r.get("/admin/tasks")
    async def list_tasks(actor: AdminActor, rt: RuntimeDep, status: str | None = None) -> Any:
        rt.audit.record(actor, "tasks.list", "tasks")
        tasks = [e.task for e in rt.cache.tasks.values()]
        if status:
            tasks = [t for t in tasks if t.status.value == status]
        return {
            "tasks": [summary(t) for t in sorted(tasks, key=lambda t: t.sn)],
            "invalid": rt.cache.invalid,
        }

    @r.get("/admin/tasks/{sn}")
    async def show_task(sn: str, actor: AdminActor, rt: RuntimeDep) -> Any:
        task = rt.cache.get_task(sn)
        rt.audit.record(actor, "tasks.show", sn, result="ok" if task else "not found", sn=sn)
        if task is None:
            raise NotFound(f"no task for serial {sn!r}", sn=sn)
        return redacted(task)

    @r.get("/admin/tasks/{sn}/audit")
    async def task_audit(sn: str, actor: AdminActor, rt: RuntimeDep) -> Any:
        from regional_client.core.ids import check_sn

        check_sn(sn)
        rt.audit.record(actor, "tasks.audit", sn)  # no sn field: reading is not part of the trail
        return {"sn": sn, "records": await rt.trail.read(sn)}

    return r
