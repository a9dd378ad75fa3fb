"""TFTP test fixtures: a served root with a 20 MiB random file and a server factory."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from regional_client.config.tftp import TftpConfig
from regional_client.core.metrics import Metrics
from regional_client.tftp.server import TftpServer

BIG = 20 * 1024 * 1024


@pytest.fixture(scope="session")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    d = tmp_path_factory.mktemp("tftpbig")
    p = d / "big.bin"
    data = os.urandom(BIG)
    p.write_bytes(data)
    return p, hashlib.sha256(data).hexdigest()


@pytest.fixture
def root(tmp_path: Path, big_file: tuple[Path, str]) -> Path:
    r = tmp_path / "tftpboot"
    (r / "pxelinux.cfg").mkdir(parents=True)
    (r / "big.bin").symlink_to(big_file[0])  # resolved inside? no: outside root -> see below
    (r / "big.bin").unlink()
    os.link(big_file[0], r / "big.bin")
    (r / "pxelinux.cfg" / "default").write_text("DEFAULT local\nLABEL local\n  LOCALBOOT 0\n")
    (r / "small.txt").write_bytes(b"line one\nline two\r\nend\n")
    return r


ServerFactory = Callable[..., Awaitable[TftpServer]]


@pytest.fixture
async def tftp_server(root: Path) -> AsyncIterator[ServerFactory]:
    servers: list[TftpServer] = []

    async def make(metrics: Metrics | None = None, source: Any = None, **cfg: Any) -> TftpServer:
        cfg.setdefault("root_dir", root)
        cfg.setdefault("listen_addr", "127.0.0.1:0")
        s = TftpServer(TftpConfig(**cfg), metrics=metrics, source=source)
        await s.start()
        servers.append(s)
        return s

    yield make
    for s in servers:
        await s.stop()
