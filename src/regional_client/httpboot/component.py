"""Wiring: the HTTP boot router (a ``components`` builder; no service of its own).

HTTP boot lives outside ``/api/v1`` (firmware fetches ``/boot/...``), so the router goes to
``rt.root_routers``, which the app factory must include without a prefix.
"""

from __future__ import annotations

from typing import Any

from regional_client.httpboot.router import router

__all__ = ["build_http_boot"]


def build_http_boot(rt: Any) -> None:
    if not rt.config.http_boot.enabled:
        return None
    if not hasattr(rt, "root_routers"):
        rt.root_routers = []
    rt.root_routers.append(router(rt.config.http_boot.path_prefix))
    return None
