"""Wiring: the TFTP service and the ``/admin/tftp/files`` router (a ``components`` builder)."""

from __future__ import annotations

from typing import Any

from regional_client.core.logs import get_logger
from regional_client.tftp.api import router
from regional_client.tftp.server import TftpServer

__all__ = ["build_tftp"]


def build_tftp(rt: Any) -> TftpServer | None:
    """TFTP server + admin router + health check; None (router still listed) when disabled."""
    rt.routers.append(router())
    cfg = rt.config.tftp
    if not cfg.enabled:
        return None
    server = TftpServer(cfg, metrics=rt.metrics, log=get_logger("tftp"))
    if getattr(rt, "boot_activity", None) is not None:
        server.on_activity = rt.boot_activity.seen_ip
    rt.services["tftp"] = server

    def health() -> dict[str, Any]:
        addr = server.address
        return {
            "ok": server.running,
            "listen": f"{addr[0]}:{addr[1]}" if addr else None,
            "active_transfers": len(server.transfers),
        }

    rt.health_checks["tftp"] = health
    return server
