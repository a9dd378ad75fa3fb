"""Fixtures for the agent tests: a real regional client (real etcd) on a loopback port."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from regional_client.daemon.server import RegionalClient
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from tests.helpers.agent_session import open_session
from tests.helpers.etcd import EtcdProcess
from tests.helpers.regional import make_config, started, wait_until

MAC = "52:54:00:12:34:56"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def task_doc(sn: str, status: str = "approved", **extra: Any) -> dict[str, Any]:
    """A task as the control plane writes it (no token anywhere: SPEC §5)."""
    task: dict[str, Any] = {
        "task_id": f"task-{sn}",
        "sn": sn,
        "mac": MAC,
        "status": status,
        "hostname": f"host-{sn.lower()}",
        "os_type": "debian",
        "os_version": "12",
        "operations": ["hardware_config", "os_install"],
        "operation_params": {"os_install": {"installer": "noop", "steps": 3, "delay": 0}},
        "hardware_scripts": [
            {"name": "bios", "interpreter": "/bin/sh", "content": "echo bios ok", "timeout": 30}
        ],
    }
    task.update(extra)
    return task


class Regional:
    """A real regional client that a test may stop and start again on the same port."""

    def __init__(self, idc: str, etcd: EtcdProcess, state_dir: Path) -> None:
        self.port = free_port()
        self.config = make_config(idc, etcd.endpoint, state_dir, api_port=self.port)
        self.rc: RegionalClient | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> RegionalClient:
        self.rc = await started(self.config)
        return self.rc

    async def stop(self) -> None:
        if self.rc is not None:
            await self.rc.stop()
            self.rc = None

    async def add_task(self, store: EtcdStore, keys: Keys, sn: str, **extra: Any) -> None:
        """Write a task and open its agent session as the power step does (status
        ``installing``): the agent's first report then claims this boot's token."""
        await store.put(keys.task(sn), task_doc(sn, **extra))
        assert self.rc is not None and self.rc.services is not None
        cache = self.rc.core.cache
        await wait_until(lambda: cache.get_task(sn) is not None)
        await open_session(store, keys, sn, cache)


@pytest.fixture
async def regional(etcd_server: EtcdProcess, idc: str, tmp_path: Path) -> AsyncIterator[Regional]:
    r = Regional(idc, etcd_server, tmp_path / "rc")
    await r.start()
    yield r
    await r.stop()
