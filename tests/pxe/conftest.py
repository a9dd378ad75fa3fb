from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from regional_client.config import PxeConfig
from regional_client.pxe.generator import PxeGenerator

URL = "http://192.168.100.1:8081"


def task(sn: str = "SN001", mac: str = "00:1a:2b:3c:4d:5e", **kw: Any) -> dict[str, Any]:
    t: dict[str, Any] = {
        "task_id": f"t-{sn}",
        "sn": sn,
        "mac": mac,
        "status": "installing",
        "hostname": "node1",
        "os_type": "ubuntu",
        "os_version": "22.04",
        # A clear token left by an older version: it must never reach a boot config.
        "agent_token": "tok-" + "a" * 20,
        "pxe": {},
    }
    t.update(kw)
    return t


@pytest.fixture
def tftp_root(tmp_path: Path) -> Path:
    r = tmp_path / "tftpboot"
    r.mkdir()
    return r


def make_gen(root: Path, **cfg: Any) -> PxeGenerator:
    cfg.setdefault("config_dir", root / "pxelinux.cfg")
    cfg.setdefault("kernel_dir", root / "kernels")
    cfg.setdefault("initrd_dir", root / "initrds")
    return PxeGenerator(PxeConfig(**cfg), root, URL)


@pytest.fixture
def gen(tftp_root: Path) -> PxeGenerator:
    return make_gen(tftp_root)
