"""DHCPv4 server for network boot.

Layers (protocol logic separate from I/O): :mod:`.packet` codec → :mod:`.leases` address
bookkeeping → :mod:`.options` / :mod:`.responder` decisions (all sans-IO) → :mod:`.store` (etcd)
→ :mod:`.server` sockets → :mod:`.service` the component → :mod:`.api` admin routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regional_client.runtime import Runtime

__all__ = ["build_component"]


def build_component(rt: Runtime) -> Any:
    """Construct the DHCP service for ``rt`` (None when ``dhcp.enabled`` is false) and register
    its admin router and health check. For :data:`regional_client.components.BUILDERS`."""
    cfg = rt.config.dhcp
    if not cfg.enabled:
        return None
    from regional_client.dhcp.api import router
    from regional_client.dhcp.service import DhcpService

    svc = DhcpService(cfg, rt.store, rt.keys, rt.metrics, regional_url=rt.config.regional_url)
    rt.services["dhcp"] = svc
    rt.routers.append(router())
    rt.health_checks["dhcp"] = svc.health
    return svc
