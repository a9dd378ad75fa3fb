"""The admin API finds the BMC from the task in etcd (real etcd, the watch cache, enc: password)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from regional_client.api.app import create_app
from regional_client.api.auth import AdminAuth, hash_token
from regional_client.config import AdminToken, config_from_dict
from regional_client.config.secretbox import SecretBox, generate_key
from regional_client.core.audit import Audit
from regional_client.core.metrics import Metrics
from regional_client.drivers.bmc.api import cache_lookup, router
from regional_client.drivers.bmc.controller import BmcController
from regional_client.tasks.cache import Cache
from regional_rack.ipmi_sim import SimBmc
from tests.bmc.conftest import FAST, PASSWORD, USER


async def test_power_via_task_in_etcd(etcd_store, keys, idc, sim_bmc: SimBmc, tmp_path: Path):
    box = SecretBox(generate_key())
    cfg = config_from_dict({"idc": idc, "bmc": FAST}, env={})
    cfg.api.admin_tokens = [AdminToken(name="ops", sha256=hash_token("tok"))]
    audit, metrics = Audit(tmp_path / "audit.jsonl", idc), Metrics(idc)
    ctl = BmcController(cfg.bmc, metrics, audit, secrets=box)
    task = {
        "sn": "SN-ETCD1",
        "mac": "52:54:00:12:34:56",
        "status": "approved",
        "bmc": {"ip": "127.0.0.1", "port": sim_bmc.port, "username": USER,
                "password": box.encrypt(PASSWORD), "type": "ipmi"},
    }  # fmt: skip
    await etcd_store.put(keys.task("SN-ETCD1"), task)
    cache = Cache(etcd_store, keys)
    await cache.start()
    try:
        for _ in range(100):
            if cache.get_task("SN-ETCD1") is not None:
                break
            await asyncio.sleep(0.05)
        auth = AdminAuth(cfg.api.admin_tokens, audit)
        app = create_app(metrics, routers=[router(ctl, cache_lookup(cache), auth, audit)])
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://t",
            headers={"Authorization": "Bearer tok"},
        ) as http:
            r = await http.post("/api/v1/admin/bmc/SN-ETCD1/power", json={"action": "on"})
            assert r.status_code == 200, r.text
            assert r.json()["power"] == "on" and sim_bmc.state.power_on
            r = await http.get("/api/v1/admin/bmc/SN-ETCD1/power")
            assert r.json()["power"] == "on"
            r = await http.get("/api/v1/admin/bmc/SN-OTHER/power")
            assert r.status_code == 404
    finally:
        await cache.stop()
        audit.close()
    assert PASSWORD not in (tmp_path / "audit.jsonl").read_text()
