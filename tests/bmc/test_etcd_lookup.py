"""The admin API finds the BMC from the task in etcd (real etcd, the watch cache, enc: password)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from regional_client.api.app import create_app
from regional_client.api.auth import hash_token
from regional_client.config import AdminToken, config_from_dict
from regional_client.config.secretbox import SecretBox, generate_key
from regional_client.core.audit import Audit
from regional_client.daemon.runtime import Runtime
from regional_client.drivers.bmc.api import router
from regional_client.drivers.bmc.controller import BmcController
from regional_client.tasks.cache import Cache
from regional_rack.ipmi_sim import SimBmc
from tests.bmc.conftest import FAST, PASSWORD, USER


async def test_power_via_task_in_etcd(etcd_store, keys, idc, sim_bmc: SimBmc, tmp_path: Path):
    box = SecretBox(generate_key())
    cfg = config_from_dict({"idc": idc, "bmc": FAST}, env={})
    cfg.api.admin_tokens = [AdminToken(name="ops", sha256=hash_token("tok"))]
    rt = Runtime(cfg, audit=Audit(tmp_path / "audit.jsonl", idc))
    rt.services["bmc"] = BmcController(cfg.bmc, rt.metrics, rt.audit, secrets=box)
    task = {
        "sn": "SN-ETCD1",
        "mac": "52:54:00:12:34:56",
        "status": "approved",
        "bmc": {"ip": "127.0.0.1", "port": sim_bmc.port, "username": USER,
                "password": box.encrypt(PASSWORD), "type": "ipmi"},
    }  # fmt: skip
    await etcd_store.put(keys.task("SN-ETCD1"), task)
    rt.cache = Cache(etcd_store, keys)
    await rt.cache.start()
    try:
        for _ in range(100):
            if rt.cache.get_task("SN-ETCD1") is not None:
                break
            await asyncio.sleep(0.05)
        app = create_app(rt, extra_routers=[router()])  # default lookup: the cache
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
        await rt.cache.stop()
        rt.audit.close()
    assert PASSWORD not in (tmp_path / "audit.jsonl").read_text()
