"""HTTP boot: the TFTP root over HTTP (``/boot/...``) and per-MAC iPXE scripts.

Mounted without the ``/api/v1`` prefix (``prefix = config.http_boot.path_prefix``, ``/boot``).
Unauthenticated, read-only, like TFTP: firmware cannot present tokens. Names are resolved by
the same :class:`~regional_client.tftp.paths.SafeRoot` as TFTP, so the same names are refused.

``GET {prefix}/ipxe/{mac}`` returns the server's generated iPXE script, or the default script
(local boot or discovery) for an unknown MAC, so the DHCP server can hand every iPXE client
``http://<server>:<port>/boot/ipxe/${net0/mac}`` (iPXE expands the variable). Other names under
``ipxe/`` (``boot.ipxe``) are plain files. ``{prefix}/files/<name>`` is an alias of
``{prefix}/<name>`` (the DHCP defaults for UEFI HTTP boot use it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from regional_client.core.errors import ForbiddenError, NotFound, ValidationError
from regional_client.core.ids import normalize_mac
from regional_client.core.metrics import Metrics
from regional_client.httpboot.response import FdResponse
from regional_client.tasks.boot_activity import BootActivity
from regional_client.tftp.paths import SafeRoot
from regional_client.tftp.stats import metric_file_label

__all__ = ["HttpBootMetrics", "router"]


class HttpBootMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self.idc = metrics.idc
        self.requests = metrics.counter(
            "regional_client_http_boot_requests_total", "HTTP boot requests by file", ["file"]
        )
        self.bytes_sent = metrics.counter(
            "regional_client_http_boot_bytes_sent_total", "HTTP boot body bytes sent"
        )

    def request(self, name: str) -> None:
        self.requests.labels(idc=self.idc, file=metric_file_label(name)).inc()

    def sent(self, n: int) -> None:
        self.bytes_sent.labels(idc=self.idc).inc(n)


def _serve(
    root: SafeRoot,
    m: HttpBootMetrics,
    name: str,
    media_type: str | None = None,
    fallback: str | None = None,
) -> Response | FdResponse:
    """Serve ``name`` (or ``fallback`` when ``name`` does not exist) from the TFTP root."""
    try:
        try:
            f = root.open(name)
        except NotFound:
            if fallback is None:
                raise
            f = root.open(fallback)
    except NotFound:
        m.request("<not_found>")
        return PlainTextResponse("not found\n", status_code=404)
    except ForbiddenError:
        m.request("<denied>")
        return PlainTextResponse("forbidden\n", status_code=403)
    m.request(f.name)
    return FdResponse(f.fd, f.size, f.mtime, f.name, media_type, on_sent=m.sent)


def router(
    root_dir: Path,
    metrics: Metrics,
    *,
    prefix: str = "/boot",
    ipxe_dir: str = "ipxe",
    activity: BootActivity | None = None,
) -> APIRouter:
    """Routes for the files under ``root_dir``; ``ipxe_dir`` is where the PXE generator writes
    iPXE scripts (relative to the root); ``activity`` is told who fetched what."""
    prefix = "/" + prefix.strip("/")
    root = SafeRoot(root_dir)
    m = HttpBootMetrics(metrics)
    r = APIRouter(tags=["http boot"])

    def seen(request: Request, mac: str | None = None) -> None:
        """Boot activity for the workflow: by MAC when the URL names it, else by client."""
        if activity is None:
            return
        if mac is not None:
            activity.seen_mac(mac)
        elif request.client is not None:
            activity.seen_ip(request.client.host)

    @r.api_route(prefix + "/ipxe/{name}", methods=["GET", "HEAD"])
    async def ipxe(name: str, request: Request) -> Any:
        try:
            mac = normalize_mac(name)
        except ValidationError:
            seen(request)
            return _serve(root, m, f"{ipxe_dir}/{name}")
        seen(request, mac)
        script = f"{ipxe_dir}/01-{mac.replace(':', '-')}.ipxe"
        return _serve(root, m, script, "text/plain", fallback=f"{ipxe_dir}/default.ipxe")

    @r.api_route(prefix + "/files/{path:path}", methods=["GET", "HEAD"])
    async def files_alias(path: str, request: Request) -> Any:
        """``/boot/files/<name>`` is the same file as ``/boot/<name>`` (the DHCP component's
        default UEFI HTTP boot URLs use this spelling); a real ``files/`` folder wins."""
        seen(request)
        return _serve(root, m, f"files/{path}", fallback=path)

    @r.api_route(prefix + "/{path:path}", methods=["GET", "HEAD"])
    async def files(path: str, request: Request) -> Any:
        seen(request)
        return _serve(root, m, path)

    return r
