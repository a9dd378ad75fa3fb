"""The component builders wire services, routers and health checks onto a runtime."""

from __future__ import annotations

from pathlib import Path

from regional_client.config import config_from_dict
from regional_client.daemon.runtime import Runtime
from regional_client.httpboot.component import build_http_boot
from regional_client.pxe.component import build_pxe
from regional_client.tftp.component import build_tftp
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
    rt = Runtime(cfg)
    tftp = build_tftp(rt)
    pxe = build_pxe(rt)
    build_http_boot(rt)
    assert tftp is rt.services["tftp"] and pxe is rt.services["pxe"]
    assert len(rt.routers) == 2 and len(rt.root_routers) == 1  # type: ignore[attr-defined]
    assert tftp is not None
    await tftp.start()
    await pxe.start()  # no store: defaults only
    try:
        await pxe.generate(task())
        health = await rt.health()
        assert health["tftp"]["ok"] and health["tftp"]["listen"].startswith("127.0.0.1:")
        assert health["pxe"] == {
            "ok": True, "configs": 1, "default_action": "localboot", "sync_failed": [],
        }  # fmt: skip
        text = (tftp_root / "ipxe" / "01-00-1a-2b-3c-4d-5e.ipxe").read_text()
        assert "http://10.0.0.1:8081/boot/kernels/" in text
    finally:
        await tftp.stop()
        await pxe.stop()
    assert not (await rt.health())["tftp"]["ok"]


def test_disabled_sections(tftp_root: Path) -> None:
    cfg = config_from_dict(
        {"tftp": {"enabled": False, "root_dir": str(tftp_root)}, "http_boot": {"enabled": False}},
        {},
    )
    rt = Runtime(cfg)
    assert build_tftp(rt) is None and "tftp" not in rt.services
    assert len(rt.routers) == 1  # the files listing still works (HTTP boot shares the root)
    build_http_boot(rt)
    assert not getattr(rt, "root_routers", [])
