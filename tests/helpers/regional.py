"""Start a real regional client (HTTP on a free loopback port) against the test etcd."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from regional_client.api.auth import hash_token
from regional_client.config import Config, config_from_dict
from regional_client.daemon.server import RegionalClient

ADMIN_TOKEN = "test-admin-token-0123456789"


def make_config(idc: str, etcd_endpoint: str, state_dir: Path, **sections: Any) -> Config:
    data: dict[str, Any] = {
        "idc": idc,
        "api_port": 0,
        "state_dir": str(state_dir),
        "api": {
            "listen_addr": "127.0.0.1",
            "admin_tokens": [{"name": "ops", "sha256": hash_token(ADMIN_TOKEN)}],
            "admin": {"port": 0},  # its own listener on a free loopback port
        },
        "etcd": {"endpoints": [etcd_endpoint], "dial_timeout": "2s", "request_timeout": "5s"},
        "dhcp": {"enabled": False},
        "tftp": {"enabled": False},
        "http_boot": {"enabled": False},
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


class RcProcess:
    """``regional-client run`` as a child process (so a test can SIGKILL it), fixed API port."""

    def __init__(self, config: dict[str, Any], workdir: Path) -> None:
        import yaml

        from tests.helpers.etcd import free_port

        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = config.get("api_port") or free_port()
        config = {**config, "api_port": self.port}
        self.config_file = workdir / "rc.yaml"
        self.config_file.write_text(yaml.safe_dump(config))
        self.proc: Any = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 30.0) -> None:
        import subprocess
        import sys

        import httpx

        from tests.helpers.cli import ENV

        log = open(self.workdir / f"stdout-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "regional_client", "run", "-c", str(self.config_file)],
            env=ENV, stdout=log, stderr=log,
        )  # fmt: skip
        log.close()
        self.starts += 1
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        async with httpx.AsyncClient() as http:
            while loop.time() < end:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"regional client exited with {self.proc.returncode}")
                try:
                    r = await http.get(f"{self.url}/api/v1/health", timeout=1)
                    if r.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("regional client did not come up")

    def kill9(self) -> None:
        import signal

        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        import signal
        import subprocess

        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
