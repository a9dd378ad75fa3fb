"""HTTP routes of the agent protocol (SPEC §5). Shapes are in the OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from regional_client.agentapi.service import AgentService


class _Req(BaseModel):
    model_config = ConfigDict(extra="ignore")
    sn: str = Field(min_length=1, max_length=128, description="Server serial number")


class ReportRequest(_Req):
    mac: str = Field(description="MAC address of the interface the agent booted from")
    hardware: dict[str, Any] = Field(default_factory=dict, description="Hardware inventory")


class ReportResponse(BaseModel):
    result: str = "ok"
    status: str = Field(
        description="discovered (no task), installing (recorded), or waiting (the task has no "
        "agent session yet: report again after a while)"
    )
    token: str | None = Field(
        None,
        description="This boot's agent token, in the answer to the first report of a boot "
        "only (keep it in memory; send it as Authorization: Bearer on every later call)",
    )


class QueueResponse(BaseModel):
    result: bool


class NextOperationResponse(BaseModel):
    operation: str = Field(description="hardware_config, os_install, ..., or none / reboot")
    params: dict[str, Any] = Field(default_factory=dict)


class Script(BaseModel):
    name: str
    interpreter: str
    content: str
    timeout: int


class HardwareConfigResponse(BaseModel):
    scripts: list[Script]


class OperationCompleteRequest(_Req):
    operation: str = Field(min_length=1, max_length=64)
    success: bool
    message: str = Field("", max_length=65536)
    output: str | None = Field(None, max_length=1 << 20, description="script/installer output")
    exit_code: int | None = None


class OkResponse(BaseModel):
    result: str = "ok"
    duplicate: bool | None = None


class ProgressRequest(_Req):
    operation: str | None = Field(None, max_length=64)
    percent: float = Field(ge=0, le=100)
    message: str = Field("", max_length=4096)


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _token(request: Request) -> str | None:
    """The bearer token (plain code, not Depends: this is the hot path)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _json(data: dict[str, Any]) -> Response:
    return Response(json.dumps(data, separators=(",", ":")), media_type="application/json")


def router(svc: AgentService) -> APIRouter:
    """Routes declare their response models for the OpenAPI document but return ready JSON
    (skipping FastAPI's response re-validation, which costs more than the handler itself)."""
    r = APIRouter(tags=["agent"])

    @r.post("/report", response_model=ReportResponse)
    async def report(body: ReportRequest, request: Request) -> Any:
        return _json(
            await svc.report(body.sn, body.mac, body.hardware, _ip(request), _token(request))
        )

    @r.post("/device/isInInstallQueue", response_model=QueueResponse)
    async def in_queue(body: _Req, request: Request) -> Any:
        return _json(svc.in_install_queue(body.sn, _token(request), _ip(request)))

    @r.post("/device/getNextOperation", response_model=NextOperationResponse)
    async def next_operation(body: _Req, request: Request) -> Any:
        return _json(svc.next_operation(body.sn, _token(request), _ip(request)))

    @r.post("/device/getHardwareConfig", response_model=HardwareConfigResponse)
    async def hardware_config(body: _Req, request: Request) -> Any:
        return _json(svc.hardware_config(body.sn, _token(request), _ip(request)))

    @r.post("/device/operationComplete", response_model=OkResponse)
    async def operation_complete(body: OperationCompleteRequest, request: Request) -> Any:
        return _json(
            await svc.operation_complete(
                body.sn,
                _token(request),
                _ip(request),
                body.operation,
                body.success,
                body.message,
                body.exit_code,
                body.output,
            )
        )

    @r.post("/progress", response_model=OkResponse)
    async def progress(body: ProgressRequest, request: Request) -> Any:
        token, ip = _token(request), _ip(request)
        return _json(
            svc.report_progress(body.sn, token, ip, body.operation, body.percent, body.message)
        )

    return r
