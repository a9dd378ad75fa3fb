"""FastAPI application factory: routers, error mapping, request metrics, health and metrics.

Errors map to JSON in one place: a :class:`~regional_client.core.errors.ProvisionError` becomes its
``http_status`` with ``{"error": code, "message": ..., <fields>}``; a request that does not parse
or validate becomes 422 with a message naming each bad field (``body.sn: Field required``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from regional_client import __version__
from regional_client.api.openapi import add_security
from regional_client.core.errors import ProvisionError
from regional_client.core.metrics import CONTENT_TYPE_LATEST, Metrics

if TYPE_CHECKING:
    from regional_client.daemon.health import Health

API_PREFIX = "/api/v1"


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:10]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "body"
        msg = err.get("msg", "invalid")
        if err.get("type") == "json_invalid":
            msg = f"malformed JSON ({err.get('ctx', {}).get('error', 'parse error')})"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


class RequestMetrics:
    """Pure ASGI middleware: request count and latency by route template, method and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        m = metrics
        self.idc = m.idc
        self.hist = m.histogram(
            "regional_client_api_request_seconds",
            "API request latency",
            ["route", "method", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.hist.labels(self.idc, path, scope["method"], str(status["code"])).observe(
                time.perf_counter() - start
            )


def _health_router(health: Health | None, metrics: Metrics, with_metrics: bool) -> APIRouter:
    r = APIRouter(tags=["health"])

    @r.get("/health")
    async def get_health() -> JSONResponse:
        body = await health.report() if health is not None else {"status": "ok"}
        return JSONResponse(body, status_code=200 if body["status"] != "down" else 503)

    if with_metrics:

        @r.get("/metrics")
        async def get_metrics() -> Response:
            if health is not None:
                health.refresh_gauges()
            return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return r


def create_app(
    metrics: Metrics,
    *,
    health: Health | None = None,
    routers: Sequence[APIRouter] = (),
    root_routers: Sequence[APIRouter] = (),
    docs: bool = True,
    with_metrics: bool = True,
) -> FastAPI:
    """The API: health (and metrics), the ``routers`` (agent and admin) under ``/api/v1`` and
    the ``root_routers`` (HTTP boot) at the root. ``docs``: serve the OpenAPI document (with
    its security schemes and error answers, :mod:`regional_client.api.openapi`)."""
    app = FastAPI(
        title="LPMOS Regional Client",
        version=__version__,
        description="Agent API (bearer: this boot's agent token, from the answer to the first "
        "report) and admin API (bearer: admin token) of one data center's regional client.",
        openapi_url=f"{API_PREFIX}/openapi.json" if docs else None,
        docs_url=f"{API_PREFIX}/docs" if docs else None,
        redoc_url=None,
    )

    @app.exception_handler(ProvisionError)
    async def provision_error(request: Request, exc: ProvisionError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        return JSONResponse(exc.to_dict(), status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"error": "invalid_request", "message": _validation_message(exc)}, status_code=422
        )

    app.include_router(_health_router(health, metrics, with_metrics), prefix=API_PREFIX)
    for r in routers:
        app.include_router(r, prefix=API_PREFIX)
    for r in root_routers:
        app.include_router(r)
    app.add_middleware(RequestMetrics, metrics=metrics)
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_security(plain_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
