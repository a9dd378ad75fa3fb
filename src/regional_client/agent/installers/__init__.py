"""``os_install`` installers: built-ins (``image``, ``noop``) plus entry-point plug-ins."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from regional_client.agent.installers.base import Installer, OpResult, ProgressFn
from regional_client.agent.installers.image import ImageInstaller
from regional_client.agent.installers.noop import NoopInstaller
from regional_client.core.errors import ValidationError

ENTRY_POINT_GROUP = "regional_client.agent_installers"
BUILTIN: dict[str, Any] = {"image": ImageInstaller, "noop": NoopInstaller}


def installer_names() -> list[str]:
    names = set(BUILTIN) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(names)


def get_installer(name: str, **options: Any) -> Installer:
    """An installer instance by name. ``options`` (``default_target``...) go to its constructor;
    every installer accepts them and may ignore them. Unknown names raise ValidationError."""
    factory = BUILTIN.get(name)
    if factory is None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == name:
                factory = ep.load()
                break
    if factory is None:
        known = ", ".join(installer_names())
        raise ValidationError(f"unknown installer {name!r} (known: {known})", installer=name)
    return factory(**options)  # type: ignore[no-any-return]


__all__ = [
    "ENTRY_POINT_GROUP",
    "ImageInstaller",
    "Installer",
    "NoopInstaller",
    "OpResult",
    "ProgressFn",
    "get_installer",
    "installer_names",
]
