"""Embedded etcd: started by ``run`` when no endpoints are set, restarted when it dies, stopped
on exit; and the ``run`` process itself shuts down cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from regional_client.config import config_from_dict
from regional_client.core.errors import StoreError
from regional_client.daemon.server import RegionalClient
from regional_client.store.embedded import read_endpoint
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from tests.helpers.cli import ENV, run_cli
from tests.helpers.regional import wait_until


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


async def test_embedded_start_kill_restart_stop(tmp_path: Path) -> None:
    cfg = config_from_dict(
        {
            "idc": "emb",
            "api_port": 0,
            "state_dir": str(tmp_path),
            "api": {"listen_addr": "127.0.0.1", "admin": {"port": 0}},
            "etcd": {"embedded": {"restart_backoff": "200ms"}},
            "logging": {"file": str(tmp_path / "rc.log"), "stderr": False},
            "dhcp": {"enabled": False},
            "tftp": {"enabled": False},
            "http_boot": {"enabled": False},
        },
        env={},
    )
    rc = RegionalClient(cfg)
    await rc.start()
    try:
        assert rc.etcd is not None
        pid = rc.etcd.pid
        assert pid and _alive(pid)
        endpoint = read_endpoint(tmp_path)
        assert endpoint and endpoint.startswith("127.0.0.1:")
        await _refuses_strangers(tmp_path, endpoint)
        keys = Keys("emb")
        rt = rc.core
        await rt.store.put(keys.task("E1"), {"sn": "E1", "mac": "52:54:00:00:00:e1"})
        await wait_until(lambda: rt.cache.get_task("E1"))

        os.kill(pid, signal.SIGKILL)
        await wait_until(lambda: rc.etcd.pid != pid and rc.etcd.restarts == 1, timeout=30)
        assert _alive(rc.etcd.pid)
        # Data survived (same data dir) and the cache's watch resumed on the new process.
        await _wait_store(rt.store)
        await rt.store.put(keys.task("E2"), {"sn": "E2", "mac": "52:54:00:00:00:e2"})
        await wait_until(lambda: rt.cache.get_task("E2"), timeout=20)
        assert (await rt.store.get(keys.task("E1"))).value["sn"] == "E1"
        # The CLI finds the embedded etcd through the state dir.
        f = tmp_path / "rc.yaml"
        f.write_text(yaml.safe_dump({"idc": "emb", "state_dir": str(tmp_path)}))
        r = await asyncio.to_thread(run_cli, "task", "list", "-c", str(f), "--json")
        assert sorted(t["sn"] for t in json.loads(r.stdout)) == ["E1", "E2"]
        new_pid = rc.etcd.pid
    finally:
        await rc.stop()
    assert not _alive(new_pid)
    assert read_endpoint(tmp_path) is None


def _http_refuses_strangers(state: Path, endpoint: str) -> None:
    tls = state / "etcd" / "tls"
    for f in tls.iterdir():
        assert f.stat().st_mode & 0o777 == 0o600, f
    assert tls.stat().st_mode & 0o777 == 0o700 and not list(tls.glob("ca-key*"))
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://{endpoint}/v3/kv/range", timeout=3)
    with pytest.raises((httpx.HTTPError, ssl.SSLError)):
        httpx.post(f"https://{endpoint}/v3/kv/range", json={"key": "Lw=="}, timeout=3,
                   verify=ssl.create_default_context(cafile=str(tls / "ca.pem")))  # fmt: skip
    ctx = ssl.create_default_context(cafile=str(tls / "ca.pem"))
    ctx.load_cert_chain(str(tls / "client.pem"), str(tls / "client-key.pem"))
    r = httpx.post(f"https://{endpoint}/v3/kv/range", json={"key": "Lw=="}, timeout=3, verify=ctx)
    assert r.status_code == 200  # with the certificate: served


async def _refuses_strangers(state: Path, endpoint: str) -> None:
    """The embedded etcd speaks TLS only and wants the state dir's client certificate: plain
    HTTP, TLS without a certificate and gRPC without one are all refused."""
    await asyncio.to_thread(_http_refuses_strangers, state, endpoint)
    ca = state / "etcd" / "tls" / "ca.pem"
    for store in (EtcdStore([endpoint], dial_timeout=2, request_timeout=2),
                  EtcdStore([endpoint], ca_cert=ca, dial_timeout=2, request_timeout=2)):
        with pytest.raises(StoreError):
            await store.connect()
            await store.revision()
        await store.close()


async def _wait_store(store: EtcdStore, timeout: float = 20.0) -> None:
    from regional_client.core.errors import StoreError

    end = time.monotonic() + timeout
    while True:
        try:
            await store.revision()
            return
        except StoreError:
            if time.monotonic() > end:
                raise
            await asyncio.sleep(0.1)


def test_run_command_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    from tests.helpers.etcd import free_port

    port = free_port()
    f = tmp_path / "rc.yaml"
    f.write_text(yaml.safe_dump({
        "idc": "runtest", "api_port": port, "state_dir": str(tmp_path),
        "api": {"listen_addr": "127.0.0.1", "admin": {"port": 0}},
        "dhcp": {"enabled": False}, "tftp": {"enabled": False}, "http_boot": {"enabled": False},
        "logging": {"file": str(tmp_path / "rc.log"), "stderr": False},
    }))  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "regional_client", "run", "--config", str(f)],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 40
        body = None
        while time.monotonic() < deadline:
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).json()
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert body and body["status"] == "ok" and body["idc"] == "runtest"
        etcd_pid = int((tmp_path / "etcd" / "endpoint").exists()) and _etcd_child(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert etcd_pid and not _alive(etcd_pid)
    log = (tmp_path / "rc.log").read_text().splitlines()
    actions = [json.loads(line)["action"] for line in log]
    assert "shutdown" in actions and actions[-1] == "stopped"
    for line in log:
        rec = json.loads(line)
        assert {"time", "level", "idc", "module", "action", "mac", "ip", "message"} <= set(rec)


def _etcd_child(parent: int) -> int:
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text().split()
                if int(stat[3]) == parent and stat[1] == "(etcd)":
                    return int(p.name)
            except (OSError, IndexError):
                continue
    return 0
