"""The admin listener apart from the install side, with TLS from a certificate/key pair."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest

from regional_client.core.errors import ConfigError
from regional_client.daemon.server import RegionalClient
from regional_rack.arista_sim import self_signed
from tests.helpers.etcd import EtcdProcess
from tests.helpers.regional import ADMIN_TOKEN, make_config, started


async def test_admin_listener_with_tls(etcd_server: EtcdProcess, idc: str, tmp_path: Path) -> None:
    (tmp_path / "tls").mkdir()
    cert, key = self_signed(tmp_path / "tls")
    cfg = make_config(idc, etcd_server.endpoint, tmp_path, api={
        "listen_addr": "127.0.0.1",
        "admin": {"port": 0, "tls_cert": str(cert), "tls_key": str(key)}})  # fmt: skip
    rc: RegionalClient = await started(cfg)
    try:
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ctx = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(verify=ctx) as https:
            r = await https.get(f"https://127.0.0.1:{rc.admin_port}/api/v1/admin/tasks",
                                headers=auth)  # fmt: skip
            assert r.status_code == 200 and r.json()["tasks"] == []
            assert (await https.get(f"https://127.0.0.1:{rc.admin_port}/api/v1/metrics")).is_success
        async with httpx.AsyncClient() as plain:
            with pytest.raises(httpx.HTTPError):  # no clear-text admin API
                await plain.get(f"http://127.0.0.1:{rc.admin_port}/api/v1/admin/tasks",
                                headers=auth)  # fmt: skip
            # The install side: agent API, boot and health only.
            base = f"http://127.0.0.1:{rc.api_port}/api/v1"
            assert (await plain.get(f"{base}/health")).status_code == 200
            assert (await plain.get(f"{base}/admin/tasks", headers=auth)).status_code == 404
            assert (await plain.post(f"{base}/device/isInInstallQueue",
                                     json={"sn": "X"})).status_code == 404  # fmt: skip
    finally:
        await rc.stop()


def test_tls_needs_both_files(tmp_path: Path, idc: str) -> None:
    with pytest.raises(ConfigError, match="tls_cert and tls_key go together"):
        make_config(idc, "127.0.0.1:1", tmp_path, api={"admin": {"tls_cert": "/x.pem"}})
