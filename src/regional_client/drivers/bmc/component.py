"""Wiring: build the BMC controller for a runtime (a builder for ``components.BUILDERS``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from regional_client.config.secretbox import SecretBox
from regional_client.drivers.bmc.api import router
from regional_client.drivers.bmc.controller import BmcController


def build_bmc(rt: Any) -> BmcController | None:
    """Controller + admin router + secrets decryptor; None when ``bmc.enabled`` is false."""
    cfg = rt.config
    box = SecretBox.from_config(cfg.secrets, Path(cfg.state_dir))
    if box.has_key and getattr(rt, "decryptor", None) is None:
        rt.decryptor = box.decrypt
    if not cfg.bmc.enabled:
        return None
    ctl = BmcController(cfg.bmc, rt.metrics, rt.audit, secrets=box)
    rt.services["bmc"] = ctl
    rt.routers.append(router())
    return ctl


__all__ = ["build_bmc"]
