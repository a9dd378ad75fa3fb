"""The component builders make services from their config sections; health checks report them."""

from __future__ import annotations

from pathlib import Path

from regional_client.config import config_from_dict
from regional_client.core.metrics import Metrics
from regional_client.daemon.components import build_pxe, build_tftp, pxe_health, tftp_health
from tests.pxe.conftest import task


async def test_builders(tftp_root: Path) -> None:
    cfg = config_from_dict(
        {
            "tftp": {"root_dir": str(tftp_root), "listen_addr": "127.0.0.1:0"},
            "pxe": {
                "config_dir": str(tftp_root / "pxelinux.cfg"),
                "kernel_dir": str(tftp_root / "kernels"),
                "initrd_dir": str(tftp_root / "initrds"),
            },
            "api": {"public_url": "http://10.0.0.1:8081"},
        },
        {},
    )
    tftp = build_tftp(cfg.tftp, Metrics(cfg.idc))
    pxe = build_pxe(cfg)
    assert tftp is not None and pxe is not None
    await tftp.start()
    await pxe.start()  # no store: defaults only
    try:
        await pxe.generate(task())
        health = tftp_health(tftp)()
        assert health["ok"] and health["listen"].startswith("127.0.0.1:")
        assert pxe_health(pxe)() == {
            "ok": True, "configs": 1, "default_action": "localboot", "sync_failed": [],
        }  # fmt: skip
        text = (tftp_root / "ipxe" / "01-00-1a-2b-3c-4d-5e.ipxe").read_text()
        assert "http://10.0.0.1:8081/boot/kernels/" in text
    finally:
        await tftp.stop()
        await pxe.stop()
    assert not tftp_health(tftp)()["ok"]


def test_disabled_sections(tftp_root: Path) -> None:
    cfg = config_from_dict(
        {"tftp": {"enabled": False, "root_dir": str(tftp_root)}, "http_boot": {"enabled": False}},
        {},
    )
    assert build_tftp(cfg.tftp, Metrics(cfg.idc)) is None
    assert build_pxe(cfg) is None  # neither TFTP nor HTTP boot serves the configs
