"""Agent sessions in tests: open one as the workflow's power step does, claim its token as the
first report of the boot does (SPEC §5: no token in any boot config)."""

from __future__ import annotations

from typing import Any

import httpx

from regional_client.model import now_iso
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from regional_client.tasks.cache import Cache
from tests.helpers.regional import wait_until


async def open_session(
    store: EtcdStore, keys: Keys, sn: str, cache: Cache | None = None, status: str = "installing"
) -> int:
    """What ``Recorder.open_agent_session`` does (plus the status): returns the boot number."""
    out = {"boot": 0}

    def fn(t: dict[str, Any] | None) -> dict[str, Any]:
        assert t is not None
        t = dict(t)
        t["status"] = status
        boot = int((t.get("agent_session") or {}).get("boot", 0)) + 1
        t["agent_session"] = {"boot": boot, "opened_at": now_iso()}
        t.pop("agent_token", None)
        out["boot"] = boot
        return t

    await store.update(keys.task(sn), fn)
    if cache is not None:
        await wait_until(
            lambda: (t := cache.get_task(sn)) is not None
            and t.agent_session is not None
            and t.agent_session.boot == out["boot"]
        )
    return out["boot"]


async def claim(
    url: str, sn: str, mac: str, hardware: dict[str, Any] | None = None,
    local_address: str | None = None,
) -> httpx.Response:
    """The first report of a boot, from ``local_address`` (default 127.0.0.1)."""
    transport = httpx.AsyncHTTPTransport(local_address=local_address) if local_address else None
    async with httpx.AsyncClient(base_url=f"{url}/api/v1", transport=transport) as http:
        return await http.post("/report", json={"sn": sn, "mac": mac, "hardware": hardware or {}})


async def session_token(
    store: EtcdStore, keys: Keys, cache: Cache, url: str, sn: str, mac: str,
    status: str = "installing",
) -> str:
    """Open a session and claim it: this boot's token."""
    await wait_until(lambda: cache.get_task(sn) is not None)
    await open_session(store, keys, sn, cache, status)
    r = await claim(url, sn, mac)
    assert r.status_code == 200 and r.json().get("token"), r.text
    return str(r.json()["token"])
