"""Wiring: build the DHCP service for a runtime (a builder for ``components.BUILDERS``)."""

from __future__ import annotations

from typing import Any

from regional_client.dhcp.api import router
from regional_client.dhcp.service import DhcpService


def build_dhcp(rt: Any) -> DhcpService | None:
    """Service + admin router + health check; None when ``dhcp.enabled`` is false.

    Must run after ``rt.store`` is connected (the service loads leases at ``start()``).
    """
    cfg = rt.config
    if not cfg.dhcp.enabled:
        return None
    svc = DhcpService(
        cfg.dhcp, rt.store, rt.keys, rt.metrics, rt.audit, regional_url=cfg.regional_url
    )
    svc.boot_activity = getattr(rt, "boot_activity", None)
    rt.services["dhcp"] = svc
    rt.routers.append(router())
    rt.health_checks["dhcp"] = svc.health
    return svc


__all__ = ["build_dhcp"]
