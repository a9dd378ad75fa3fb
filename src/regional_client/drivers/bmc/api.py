"""Admin API for BMCs: power status and control, boot device, per server serial.

Paths are relative to ``/api/v1``. The BMC is found from the server's task (``bmc`` record) or,
failing that, its server record, through a lookup callable (in the service: the watch cache,
:func:`cache_lookup`). Every call is audited by the controller (actor = admin token name);
a lookup failure is audited here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from regional_client.api.auth import AdminAuth
from regional_client.core.audit import Audit
from regional_client.core.errors import NotFound, ProvisionError
from regional_client.drivers.bmc.base import BmcTarget
from regional_client.drivers.bmc.controller import BmcController
from regional_client.tasks.cache import Cache

Lookup = Callable[[str], Any]
"""``sn -> task or server record (dict or model) with a bmc section, or None``."""


class PowerAction(BaseModel):
    action: Literal["on", "off", "reset", "cycle"]


class BootRequest(BaseModel):
    device: Literal["pxe", "disk", "cdrom", "bios"]
    persistent: bool = False
    uefi: bool | None = None


def cache_lookup(cache: Cache) -> Lookup:
    """The task of ``sn`` from the watch cache, else its server record."""

    def find(sn: str) -> Any:
        task = cache.get_task(sn)
        if task is not None and _bmc_of(task):
            return task
        server = cache.get_server(sn)
        return server if server is not None and _bmc_of(server) else task

    return find


def _as_dict(record: Any) -> dict[str, Any]:
    if hasattr(record, "model_dump"):
        return dict(record.model_dump(mode="json"))
    return dict(record) if isinstance(record, Mapping) else {}


def _bmc_of(record: Any) -> bool:
    bmc = _as_dict(record).get("bmc")
    return isinstance(bmc, Mapping) and bool(bmc.get("ip") or bmc.get("host"))


def router(ctl: BmcController, find: Lookup, auth: AdminAuth, audit: Audit) -> APIRouter:
    r = APIRouter(tags=["bmc"])

    def resolve(actor: str, sn: str, action: str) -> tuple[BmcController, BmcTarget]:
        try:
            record = find(sn)
            if record is None or not _bmc_of(record):
                raise NotFound(f"no BMC known for server {sn} (no task or server record)", sn=sn)
            return ctl, ctl.target_for(_as_dict(record), sn=sn)
        except ProvisionError as e:
            audit.record(actor, f"bmc.{action}", f"server:{sn}", e.message, sn=sn)
            raise

    @r.get("/admin/bmc/{sn}/power")
    async def get_power(sn: str, actor: str = Depends(auth)) -> dict[str, Any]:
        ctl, target = resolve(actor, sn, "power_status")
        state = await ctl.power_status(target, actor=actor)
        return {"sn": sn, "bmc": target.name, "power": state.value}

    @r.post("/admin/bmc/{sn}/power")
    async def set_power(
        sn: str, body: PowerAction, actor: str = Depends(auth)
    ) -> dict[str, Any]:
        ctl, target = resolve(actor, sn, f"power_{body.action}")
        op = {
            "on": ctl.power_on,
            "off": ctl.power_off,
            "reset": ctl.power_reset,
            "cycle": ctl.power_cycle,
        }[body.action]
        res = await op(target, actor=actor)
        return {
            "sn": sn,
            "bmc": target.name,
            "action": body.action,
            "power": res.state.value,
            "changed": res.changed,
            "note": res.note,
        }

    @r.get("/admin/bmc/{sn}/boot")
    async def get_boot(sn: str, actor: str = Depends(auth)) -> dict[str, Any]:
        ctl, target = resolve(actor, sn, "get_boot_device")
        s = await ctl.get_boot_device(target, actor=actor)
        return {"sn": sn, "bmc": target.name, **_boot(s)}

    @r.post("/admin/bmc/{sn}/boot")
    async def set_boot(
        sn: str, body: BootRequest, actor: str = Depends(auth)
    ) -> dict[str, Any]:
        ctl, target = resolve(actor, sn, "set_boot_device")
        s = await ctl.set_boot_device(target, body.device, body.persistent, body.uefi, actor=actor)
        return {"sn": sn, "bmc": target.name, **_boot(s)}

    return r


def _boot(s: Any) -> dict[str, Any]:
    return {"device": s.device.value, "persistent": s.persistent, "uefi": s.uefi}


__all__ = ["BootRequest", "PowerAction", "cache_lookup", "router"]
