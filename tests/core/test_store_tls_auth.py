"""The store against a real etcd that requires TLS client certificates, and one with auth on."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from regional_client.config import config_from_dict
from regional_client.config.secretbox import SecretBox, generate_key, write_key_file
from regional_client.core.errors import ConfigError, StoreError
from regional_client.daemon.server import RegionalClient
from regional_client.store.etcd import EtcdStore
from tests.helpers.cli import run_cli
from tests.helpers.etcd import EtcdProcess, free_port
from tests.helpers.regional import wait_until


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    os.chmod(path, 0o600)
    return path


def _pem_key(k: ec.EllipticCurvePrivateKey) -> bytes:
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())  # fmt: skip


def _cert(subject: str, key, issuer_key, issuer_name, ca: bool, server: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return b.sign(issuer_key, hashes.SHA256())


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    ca_key = _key()
    ca = _cert("test-ca", ca_key, ca_key, None, ca=True, server=False)
    out = {"ca": _write(tmp_path / "ca.pem", ca.public_bytes(serialization.Encoding.PEM))}
    for name, server in (("server", True), ("client", False)):
        k = _key()
        c = _cert(name, k, ca_key, ca.subject, ca=False, server=server)
        out[name] = _write(tmp_path / f"{name}.pem", c.public_bytes(serialization.Encoding.PEM))
        out[f"{name}-key"] = _write(tmp_path / f"{name}-key.pem", _pem_key(k))
    return out


async def test_tls_with_client_certificates(tmp_path: Path, pki: dict[str, Path]) -> None:
    port, peer = free_port(), free_port()
    url = f"https://127.0.0.1:{port}"
    log = open(tmp_path / "etcd.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        ["etcd", "--name", "tls", "--data-dir", str(tmp_path / "data"),
         "--listen-client-urls", url, "--advertise-client-urls", url,
         "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"tls=http://127.0.0.1:{peer}",
         "--cert-file", str(pki["server"]), "--key-file", str(pki["server-key"]),
         "--trusted-ca-file", str(pki["ca"]), "--client-cert-auth"],
        stdout=log, stderr=log, env={"PATH": os.environ["PATH"]},
    )  # fmt: skip
    log.close()
    try:
        store = EtcdStore([url], ca_cert=pki["ca"], cert_file=pki["client"],
                          key_file=pki["client-key"], dial_timeout=2)  # fmt: skip
        for _ in range(100):
            try:
                await store.connect()
                break
            except StoreError:
                time.sleep(0.1)
        await store.put("/os/tls/x", {"secure": True})
        assert (await store.get("/os/tls/x")).value == {"secure": True}
        assert await _first_watched(store, "/os/tls/") == ("/os/tls/x", {"secure": True})
        await store.close()
        # Without a client certificate the server refuses us: a clear StoreError.
        bare = EtcdStore([url], ca_cert=pki["ca"], dial_timeout=1, request_timeout=1)
        with pytest.raises(StoreError):
            await bare.connect()
    finally:
        proc.terminate()
        proc.wait(10)


async def test_user_password_auth(own_etcd: EtcdProcess) -> None:
    ep = own_etcd.endpoint
    env = {"PATH": os.environ["PATH"], "ETCDCTL_API": "3"}

    def ctl(*args: str, stdin: str | None = None) -> None:
        subprocess.run(["etcdctl", f"--endpoints={ep}", *args], input=stdin, text=True,
                       env=env, check=True, capture_output=True)  # fmt: skip

    ctl("user", "add", "root", "--interactive=false", stdin="rootpw\n")
    ctl("user", "add", "rc", "--interactive=false", stdin="rc-secret\n")
    ctl("role", "add", "rc")
    ctl("role", "grant-permission", "rc", "--prefix=true", "readwrite", "/os/")
    ctl("user", "grant-role", "rc", "rc")
    ctl("auth", "enable")
    store = EtcdStore([ep], username="rc", password="rc-secret")
    await store.put("/os/auth/x", {"ok": 1})
    assert (await store.get("/os/auth/x")).value == {"ok": 1}
    assert await _first_watched(store, "/os/auth/") == ("/os/auth/x", {"ok": 1})
    await store.close()
    wrong = EtcdStore([ep], username="rc", password="nope", dial_timeout=2)
    with pytest.raises(StoreError):
        await wrong.connect()


async def _first_watched(store: EtcdStore, prefix: str) -> tuple[str, object]:
    """The first event a watch from revision 1 delivers (the watch stream runs on its own
    channel, so it must carry the same TLS and credentials)."""

    async def first() -> tuple[str, object]:
        async for ev in store.watch_prefix(prefix, 1):
            return ev.key, ev.value
        raise AssertionError("watch ended")

    return await asyncio.wait_for(first(), 10)


async def test_enc_etcd_password_starts_the_service(own_etcd: EtcdProcess, tmp_path: Path) -> None:
    """An ``enc:`` etcd password (encrypted with the secrets key) is opened before the store
    connects: the service starts against an etcd with auth on, and the CLI connects too."""
    ep = own_etcd.endpoint
    env = {"PATH": os.environ["PATH"], "ETCDCTL_API": "3"}

    def ctl(*args: str, stdin: str | None = None) -> None:
        subprocess.run(["etcdctl", f"--endpoints={ep}", *args], input=stdin, text=True,
                       env=env, check=True, capture_output=True)  # fmt: skip

    ctl("user", "add", "root", "--interactive=false", stdin="rootpw\n")
    ctl("user", "add", "rc", "--interactive=false", stdin="rc-secret\n")
    ctl("role", "add", "rc")
    ctl("role", "grant-permission", "rc", "--prefix=true", "readwrite", "/os/")
    ctl("user", "grant-role", "rc", "rc")
    ctl("auth", "enable")
    key_file = tmp_path / "secret.key"
    write_key_file(key_file, generate_key())
    box = SecretBox(key_file.read_text())
    data = {
        "idc": "encdc",
        "api_port": 0,
        "state_dir": str(tmp_path / "state"),
        "api": {"listen_addr": "127.0.0.1", "admin": {"port": 0}},
        "etcd": {"endpoints": [ep], "username": "rc", "password": box.encrypt("rc-secret")},
        "secrets": {"key_file": str(key_file)},
        "logging": {"file": str(tmp_path / "rc.log"), "stderr": False},
        "dhcp": {"enabled": False},
        "tftp": {"enabled": False},
        "http_boot": {"enabled": False},
        "bmc": {"enabled": False},
    }
    assert "rc-secret" not in json.dumps(data)
    rc = RegionalClient(config_from_dict(data, env={}))
    core = (await rc.start()).core
    try:
        await core.store.put(core.keys.task("ENC1"), {"sn": "ENC1", "mac": "52:54:00:00:0e:01"})
        await wait_until(lambda: core.cache.get_task("ENC1"))
        async with httpx.AsyncClient() as http:
            health = (await http.get(f"http://127.0.0.1:{rc.api_port}/api/v1/health")).json()
        assert health["etcd"]["reachable"], health
        cfg_file = tmp_path / "rc.yaml"
        cfg_file.write_text(yaml.safe_dump(data))
        out = run_cli("task", "list", "-c", str(cfg_file), "--json")
        assert out.returncode == 0, out.stderr
        assert [t["sn"] for t in json.loads(out.stdout)] == ["ENC1"]
    finally:
        await rc.stop()
    # The same config without the key cannot open the password: a clear error, no start.
    no_key = {**data, "secrets": {"key_file": None}, "state_dir": str(tmp_path / "other")}
    other = RegionalClient(config_from_dict(no_key, env={}))
    try:
        with pytest.raises(ConfigError, match="no secret key"):
            await other.start()
    finally:
        await other.stop()
