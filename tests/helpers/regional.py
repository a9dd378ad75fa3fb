"""Start a real regional client (HTTP on a free loopback port) against the test etcd."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from regional_client.api.auth import hash_token
from regional_client.config import Config, config_from_dict
from regional_client.server import RegionalClient

ADMIN_TOKEN = "test-admin-token-0123456789"


def make_config(idc: str, etcd_endpoint: str, state_dir: Path, **sections: Any) -> Config:
    data: dict[str, Any] = {
        "idc": idc,
        "api_port": 0,
        "state_dir": str(state_dir),
        "api": {
            "listen_addr": "127.0.0.1",
            "admin_tokens": [{"name": "ops", "sha256": hash_token(ADMIN_TOKEN)}],
        },
        "etcd": {"endpoints": [etcd_endpoint], "dial_timeout": "2s", "request_timeout": "5s"},
        "dhcp": {"enabled": False},
        "tftp": {"enabled": False},
        "switch": {"enabled": False},
        "bmc": {"enabled": False},
        "workflow": {"enabled": False},
        "logging": {"level": "debug", "file": str(state_dir / "rc.log"), "stderr": False},
    }
    for k, v in sections.items():
        if isinstance(v, dict) and isinstance(data.get(k), dict):
            data[k] = {**data[k], **v}
        else:
            data[k] = v
    return config_from_dict(data, env={})


async def wait_until(pred: Callable[[], Any], timeout: float = 10.0, step: float = 0.02) -> Any:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(step)


async def started(config: Config) -> RegionalClient:
    rc = RegionalClient(config)
    await rc.start()
    return rc
