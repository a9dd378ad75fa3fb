"""Wiring: the PXE config service and its admin router (a ``components`` builder).

Build after the store is connected: ``PxeService.start()`` rebuilds every per-MAC config from
the tasks in etcd.
"""

from __future__ import annotations

from typing import Any

from regional_client.pxe.api import router
from regional_client.pxe.generator import PxeGenerator
from regional_client.pxe.service import PxeService

__all__ = ["build_pxe"]


def build_pxe(rt: Any) -> PxeService:
    svc = PxeService(PxeGenerator.from_config(rt.config), store=rt.store, keys=rt.keys)
    rt.services["pxe"] = svc
    rt.routers.append(router())

    def health() -> dict[str, Any]:
        last = svc.last_sync
        return {
            "ok": last is None or not last.failed,
            "configs": len(svc.generator.macs()),
            "default_action": svc.generator.config.default_action,
            "sync_failed": sorted(last.failed) if last else [],
        }

    rt.health_checks["pxe"] = health
    return svc
