"""Redfish payloads to our values and back: pure functions, no I/O (tested on their own).

Covers the handful of ``ComputerSystem`` fields a provisioner needs: ``PowerState``, the
``Boot`` override (target, enabled, mode and their ``@Redfish.AllowableValues``), the
``#ComputerSystem.Reset`` action and the identity fields. A malformed payload raises
:class:`~regional_client.core.errors.BmcError` naming the JSON path and the resource.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from regional_client.core.errors import BmcError
from regional_client.drivers.bmc.base import BootDevice, BootSetting, PowerState, SystemInfo

TARGET_OF: dict[BootDevice, str] = {
    BootDevice.PXE: "Pxe",
    BootDevice.DISK: "Hdd",
    BootDevice.CDROM: "Cd",
    BootDevice.BIOS: "BiosSetup",
}
DEVICE_OF: dict[str, BootDevice] = {v: k for k, v in TARGET_OF.items()}
DEVICE_OF.update({"None": BootDevice.NONE, "UefiHttp": BootDevice.PXE, "Usb": BootDevice.CDROM})

RESET_PREFERENCES: dict[str, tuple[str, ...]] = {
    "on": ("On", "ForceOn"),
    "off": ("ForceOff", "GracefulShutdown", "PushPowerButton"),
    "reset": ("ForceRestart", "GracefulRestart", "PowerCycle"),
}
RESET_ACTION = "#ComputerSystem.Reset"


def odata_id(obj: Any, path: str, resource: str) -> str:
    """``obj["@odata.id"]`` or a BmcError naming ``path`` in ``resource``."""
    if isinstance(obj, Mapping) and isinstance(obj.get("@odata.id"), str):
        return obj["@odata.id"]
    raise BmcError(f"Redfish resource {resource}: missing {path}/@odata.id", resource=resource)


def members(collection: Mapping[str, Any], resource: str) -> list[str]:
    raw = collection.get("Members")
    if not isinstance(raw, list):
        raise BmcError(f"Redfish resource {resource}: Members is not a list", resource=resource)
    return [odata_id(m, f"Members/{i}", resource) for i, m in enumerate(raw)]


def pick_system(paths: Sequence[str], wanted: str | None, resource: str) -> str:
    """The one system to drive: the configured id, or the only one there is."""
    if wanted:
        for p in paths:
            if p.rstrip("/").rsplit("/", 1)[-1] == wanted or p == wanted:
                return p
        raise BmcError(
            f"Redfish {resource}: no system {wanted!r} (has {', '.join(paths) or 'none'})",
            permanent=True,
        )
    if len(paths) != 1:
        raise BmcError(
            f"Redfish {resource}: {len(paths)} systems ({', '.join(paths)}); "
            "set bmc.redfish.system_id",
            permanent=True,
        )
    return paths[0]


def power_state(system: Mapping[str, Any], resource: str) -> PowerState:
    """``On``/``PoweringOff`` count as on, ``Off``/``PoweringOn`` as off (not there yet)."""
    raw = system.get("PowerState")
    if raw in ("On", "PoweringOff"):
        return PowerState.ON
    if raw in ("Off", "PoweringOn"):
        return PowerState.OFF
    raise BmcError(f"Redfish resource {resource}: PowerState is {raw!r}", resource=resource)


def boot_setting(system: Mapping[str, Any], resource: str) -> BootSetting:
    boot = system.get("Boot")
    if not isinstance(boot, Mapping):
        raise BmcError(f"Redfish resource {resource}: no Boot object", resource=resource)
    mode = boot.get("BootSourceOverrideMode")
    uefi = None if mode is None else mode == "UEFI"
    enabled = boot.get("BootSourceOverrideEnabled", "Disabled")
    target = boot.get("BootSourceOverrideTarget")
    if enabled == "Disabled" or target in (None, "None"):
        return BootSetting(BootDevice.NONE, persistent=False, uefi=uefi)
    device = DEVICE_OF.get(str(target))
    if device is None:
        raise BmcError(
            f"Redfish resource {resource}: Boot/BootSourceOverrideTarget {target!r} is not one "
            "we know",
            resource=resource,
        )
    return BootSetting(device, persistent=enabled == "Continuous", uefi=uefi)


def boot_patch(
    system: Mapping[str, Any], device: BootDevice, persistent: bool, uefi: bool | None, name: str
) -> dict[str, Any]:
    """The PATCH body for a boot override, checked against what the system advertises."""
    target = TARGET_OF[device]
    boot = system.get("Boot") or {}
    allowed = boot.get("BootSourceOverrideTarget@Redfish.AllowableValues")
    if isinstance(allowed, list) and target not in allowed:
        raise BmcError(
            f"BMC {name}: boot target {target} not offered (offers {', '.join(allowed)})",
            device=name,
            permanent=True,
        )
    body: dict[str, Any] = {
        "BootSourceOverrideTarget": target,
        "BootSourceOverrideEnabled": "Continuous" if persistent else "Once",
    }
    if uefi is not None:
        body["BootSourceOverrideMode"] = "UEFI" if uefi else "Legacy"
    return {"Boot": body}


def reset_action(system: Mapping[str, Any], resource: str) -> tuple[str, list[str] | None]:
    """The Reset action's target URI and its advertised ``ResetType`` values (None: unknown)."""
    actions = system.get("Actions") or {}
    action = actions.get(RESET_ACTION)
    if not isinstance(action, Mapping) or not isinstance(action.get("target"), str):
        raise BmcError(
            f"Redfish resource {resource}: no Actions/{RESET_ACTION}/target", resource=resource
        )
    allowed = action.get("ResetType@Redfish.AllowableValues")
    return action["target"], list(allowed) if isinstance(allowed, list) else None


def action_info_values(info: Mapping[str, Any]) -> list[str] | None:
    """``ResetType`` allowable values from an ``@Redfish.ActionInfo`` resource."""
    for p in info.get("Parameters") or []:
        if isinstance(p, Mapping) and p.get("Name") == "ResetType":
            values = p.get("AllowableValues")
            return list(values) if isinstance(values, list) else None
    return None


def pick_reset_type(kind: str, allowed: Sequence[str] | None, name: str) -> str:
    """Our intent (``on``/``off``/``reset``) to the first ResetType the system advertises."""
    prefs = RESET_PREFERENCES[kind]
    if allowed is None:
        return prefs[0]
    for p in prefs:
        if p in allowed:
            return p
    raise BmcError(
        f"BMC {name}: no reset type for power {kind} (offers {', '.join(allowed) or 'none'})",
        device=name,
        permanent=True,
    )


def system_info(system: Mapping[str, Any]) -> SystemInfo:
    state = system.get("PowerState")
    return SystemInfo(
        manufacturer=system.get("Manufacturer"),
        model=system.get("Model"),
        serial=system.get("SerialNumber"),
        uuid=system.get("UUID"),
        bios_version=system.get("BiosVersion"),
        power_state=PowerState.ON if state == "On" else PowerState.OFF if state else None,
        extra={"name": system.get("Name"), "id": system.get("Id")},
    )


def error_message(body: Any) -> str:
    """The human text of a Redfish error body (``error.@Message.ExtendedInfo``), if any."""
    if not isinstance(body, Mapping) or not isinstance(body.get("error"), Mapping):
        return ""
    err = body["error"]
    texts = [
        str(i.get("Message"))
        for i in err.get("@Message.ExtendedInfo") or []
        if isinstance(i, Mapping) and i.get("Message")
    ]
    return "; ".join(texts) or str(err.get("message") or "")
