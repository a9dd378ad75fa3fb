"""What one per-MAC boot config is made from, validated so nothing can inject directives.

Every value that lands in a pxelinux, GRUB or iPXE file is checked against a conservative
character set: no newlines or control characters (a new line would be a new directive), and in
kernel parameters none of ``$ ; & | < > ' " \\ { } # ` `` (GRUB and iPXE expand ``$...`` and
treat the others as syntax). URLs with ``&`` in kernel parameters are therefore refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regional_client.core.errors import ForbiddenError, ValidationError
from regional_client.core.ids import check_sn, normalize_mac
from regional_client.core.tokens import NEVER_IN_BOOT_CONFIG
from regional_client.tftp.paths import normalize_name

__all__ = ["BootSpec", "check_params", "check_rel_path", "mac_hyphen", "merge_params"]

_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_PARAM_OK = re.compile(r"^[A-Za-z0-9 ._,:=/+@%~?*!^\[\]-]*$")
_PATH_OK = re.compile(r"^[A-Za-z0-9._+/@=,-]+$")
_URL_OK = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~/%-]*)?$")


def mac_hyphen(mac: str) -> str:
    """``aa:bb:cc:dd:ee:ff`` → ``aa-bb-cc-dd-ee-ff`` (the spelling in file names)."""
    return normalize_mac(mac).replace(":", "-")


def check_params(text: str, what: str = "kernel_params") -> str:
    if len(text) > 2048:
        raise ValidationError(f"{what} longer than 2048 characters", field=what)
    if not _PARAM_OK.match(text):
        bad = sorted({c for c in text if not _PARAM_OK.match(c)})
        raise ValidationError(
            f"{what} contains characters not allowed in boot configs: {''.join(bad)!r}",
            field=what,
        )
    return " ".join(text.split())


def check_url(url: str, what: str) -> str:
    if not _URL_OK.match(url):
        raise ValidationError(f"{what} is not a plain http(s) URL: {url!r}", field=what)
    return url.rstrip("/")


def check_rel_path(path: str, tftp_root: Path, what: str) -> str:
    """A boot file path as the loaders want it: relative to the TFTP root, no tricks."""
    p = path.strip()
    root = str(tftp_root).rstrip("/") + "/"
    if p.startswith(root):
        p = p[len(root) :]
    try:
        rel = normalize_name(p)
    except ForbiddenError as e:
        raise ValidationError(f"{what}: {e.message}", field=what) from None
    if not _PATH_OK.match(rel):
        raise ValidationError(f"{what} contains characters not allowed: {path!r}", field=what)
    return rel


def merge_params(*parts: str, reserved: Mapping[str, str]) -> str:
    """Join parameter strings; ``reserved`` keys are dropped from ``parts`` and appended last;
    token parameters (:data:`~regional_client.core.tokens.NEVER_IN_BOOT_CONFIG`) are dropped:
    no secret is ever in a boot config (SPEC §5)."""
    out: list[str] = []
    for part in parts:
        for tok in part.split():
            key = tok.split("=", 1)[0]
            if key not in reserved and key not in NEVER_IN_BOOT_CONFIG:
                out.append(tok)
    out += [f"{k}={v}" for k, v in reserved.items()]
    return " ".join(out)


def _opt(value: Any, rx: re.Pattern[str], what: str) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not rx.match(value):
        raise ValidationError(f"invalid {what}: {value!r}", field=what)
    return value


@dataclass(frozen=True)
class BootSpec:
    """Inputs for one server's boot config (from a task, SPEC §3)."""

    mac: str
    sn: str
    hostname: str | None = None
    os_type: str | None = None
    os_version: str | None = None
    kernel_path: str | None = None
    initrd_path: str | None = None
    kernel_params: str = ""
    task_id: str | None = None
    network: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mac", normalize_mac(self.mac))
        check_sn(self.sn)
        _opt(self.hostname, _HOSTNAME, "hostname")
        _opt(self.os_type, _NAME, "os_type")
        _opt(self.os_version, _NAME, "os_version")
        _opt(self.task_id, _NAME, "task_id")
        object.__setattr__(self, "kernel_params", check_params(self.kernel_params or ""))

    @classmethod
    def from_task(cls, task: Mapping[str, Any] | Any) -> BootSpec:
        """Build from a task dict (or a pydantic task model) as stored in etcd."""
        if not isinstance(task, Mapping):
            task = task.model_dump(mode="json")
        pxe = task.get("pxe") or {}
        net = task.get("network") or {}
        for key in ("sn", "mac"):
            if not task.get(key):
                raise ValidationError(f"task has no {key}", field=key)
        return cls(
            mac=task["mac"],
            sn=task["sn"],
            hostname=task.get("hostname"),
            os_type=task.get("os_type"),
            os_version=task.get("os_version"),
            kernel_path=pxe.get("kernel_path"),
            initrd_path=pxe.get("initrd_path"),
            kernel_params=pxe.get("kernel_params") or "",
            task_id=task.get("task_id") or None,
            network={k: v for k, v in net.items() if isinstance(v, str | int | list)},
        )
