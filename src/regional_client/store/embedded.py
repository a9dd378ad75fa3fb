"""Embedded single-member etcd: started, watched and restarted by the regional client.

Used when ``etcd.endpoints`` is empty (the default), so one command runs the whole product on a
laptop. It is a real ``etcd`` binary from PATH (Debian ``etcd-server``), never an imitation:
data under ``<state_dir>/etcd``, listening on loopback only, on free ports chosen at first start
and kept across restarts (so clients reconnect to the same address). The endpoint is written to
``<state_dir>/etcd/endpoint`` so the CLI, given the same config, finds it.

It speaks TLS only and demands a client certificate (:mod:`.embedded_tls`, made under
``<state_dir>/etcd/tls``): no local process without the state dir's certificate can talk to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import ssl
from pathlib import Path

import httpx

from regional_client.core.errors import StoreError
from regional_client.core.logs import get_logger
from regional_client.store.embedded_tls import EmbeddedTls, ensure_tls

log = get_logger("etcd")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def endpoint_file(state_dir: Path) -> Path:
    return Path(state_dir) / "etcd" / "endpoint"


def embedded_tls(state_dir: Path) -> EmbeddedTls | None:
    """The client certificates of the embedded etcd run from this state dir, if made."""
    tls = EmbeddedTls(Path(state_dir) / "etcd" / "tls")
    return tls if tls.complete() else None


def read_endpoint(state_dir: Path) -> str | None:
    """The endpoint of an embedded etcd run from this state dir, if one is running."""
    try:
        return endpoint_file(state_dir).read_text().strip() or None
    except OSError:
        return None


class EmbeddedEtcd:
    def __init__(
        self,
        state_dir: Path,
        binary: str = "etcd",
        client_port: int = 0,
        peer_port: int = 0,
        restart_backoff: float = 1.0,
        start_timeout: float = 30.0,
    ) -> None:
        self.dir = Path(state_dir) / "etcd"
        self.binary = binary
        self.client_port = client_port
        self.peer_port = peer_port
        self.restart_backoff = restart_backoff
        self.start_timeout = start_timeout
        self.proc: asyncio.subprocess.Process | None = None
        self.tls: EmbeddedTls | None = None
        self.restarts = 0
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    async def start(self) -> str:
        """Start etcd and wait until it answers; returns ``host:port``. Supervises from then on."""
        exe = shutil.which(self.binary)
        if exe is None:
            raise StoreError(
                f"embedded etcd: '{self.binary}' not found on PATH "
                "(install Debian package etcd-server, or set etcd.endpoints)"
            )
        self.binary = exe
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self.tls = ensure_tls(self.dir)
        if not self.client_port:
            self.client_port = free_port()
        if not self.peer_port:
            self.peer_port = free_port()
        self._stopping = False
        await self._launch()
        endpoint_file(self.dir.parent).write_text(self.endpoint + "\n")
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())
        return self.endpoint

    async def _launch(self) -> None:
        assert self.tls is not None
        t = self.tls
        client = f"https://127.0.0.1:{self.client_port}"
        peer = f"https://127.0.0.1:{self.peer_port}"
        args = [
            "--name", "regional-client",
            "--data-dir", str(self.dir / "data"),
            "--listen-client-urls", client,
            "--advertise-client-urls", client,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"regional-client={peer}",
            "--client-cert-auth", "--trusted-ca-file", str(t.ca),
            "--cert-file", str(t.server_cert), "--key-file", str(t.server_key),
            "--peer-client-cert-auth", "--peer-trusted-ca-file", str(t.ca),
            "--peer-cert-file", str(t.server_cert), "--peer-key-file", str(t.server_key),
            "--auto-compaction-mode", "revision",
            "--auto-compaction-retention", "100000",
            "--quota-backend-bytes", str(4 * 1024**3),
        ]  # fmt: skip
        logf = open(self.dir / "etcd.log", "ab")  # noqa: SIM115 (handed to the child)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}  # nothing else leaks to etcd
        try:
            self.proc = await asyncio.create_subprocess_exec(
                self.binary, *args, stdout=logf, stderr=logf, stdin=asyncio.subprocess.DEVNULL,
                env=env, start_new_session=True,
            )  # fmt: skip
        finally:
            logf.close()
        log.info("embedded etcd started", action="etcd_start", pid=self.proc.pid, ip=client)
        await self._wait_healthy()

    async def _wait_healthy(self) -> None:
        assert self.tls is not None
        url = f"https://127.0.0.1:{self.client_port}/health"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        ctx = ssl.create_default_context(cafile=str(self.tls.ca))
        ctx.load_cert_chain(str(self.tls.client_cert), str(self.tls.client_key))
        async with httpx.AsyncClient(timeout=1.0, verify=ctx) as http:
            while loop.time() < deadline:
                if self.proc is not None and self.proc.returncode is not None:
                    tail = (self.dir / "etcd.log").read_bytes()[-600:].decode("utf-8", "replace")
                    raise StoreError(f"embedded etcd exited with {self.proc.returncode}: {tail}")
                with contextlib.suppress(httpx.HTTPError):
                    r = await http.get(url)
                    if r.status_code == 200 and r.json().get("health") in ("true", True):
                        return
                await asyncio.sleep(0.1)
        raise StoreError(f"embedded etcd did not become healthy within {self.start_timeout}s")

    async def _supervise(self) -> None:
        backoff = self.restart_backoff
        while not self._stopping:
            assert self.proc is not None
            code = await self.proc.wait()
            if self._stopping:
                return
            log.error("embedded etcd died; restarting", action="etcd_died", code=code)
            await asyncio.sleep(backoff)
            try:
                await self._launch()
                self.restarts += 1
                backoff = self.restart_backoff
            except StoreError as e:
                log.error(
                    "embedded etcd restart failed", action="etcd_restart_failed", error=str(e)
                )
                backoff = min(backoff * 2, 30.0)

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        proc = self.proc
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        with contextlib.suppress(OSError):
            endpoint_file(self.dir.parent).unlink()
        log.info("embedded etcd stopped", action="etcd_stop")
