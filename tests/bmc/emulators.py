"""Start sushy-tools' Redfish emulator (``sushy-emulator --fake``) on loopback for tests/bench.

The emulator is the real peer (OpenStack's own test tool). Its fake driver applies power
changes 1-11 s after the request and stores a "Once" boot override as "Continuous".
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import bcrypt
import httpx


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (IP SAN) and its key, written as PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-bmc")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "bmc.crt", directory / "bmc.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class SushyEmulator:
    """One emulator process serving ``count`` fake systems (``sys0``...) behind basic auth."""

    def __init__(
        self, workdir: Path, count: int, username: str, password: str, tls: bool = False
    ) -> None:
        self.workdir = workdir
        self.tls = tls
        self.cert: Path | None = None
        self.count = count
        self.username = username
        self.port = free_tcp_port()
        self.systems = [str(uuid.uuid4()) for _ in range(count)]
        self.names = [f"sys{i}" for i in range(count)]
        self._password = password
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "sushy.log"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        htpasswd = self.workdir / "htpasswd"
        digest = bcrypt.hashpw(self._password.encode(), bcrypt.gensalt(rounds=4)).decode()
        htpasswd.write_text(f"{self.username}:{digest}\n")
        systems = [
            {
                "uuid": u,
                "name": n,
                "power_state": "Off",
                "external_notifier": False,
                "nics": [{"mac": f"52:54:00:00:00:{i:02x}", "ip": "127.0.0.1"}],
            }
            for i, (u, n) in enumerate(zip(self.systems, self.names, strict=True))
        ]
        cfg = self.workdir / "emulator.conf"
        text = (
            "SUSHY_EMULATOR_FAKE_DRIVER = True\n"
            f"SUSHY_EMULATOR_STATE_DIR = {str(self.workdir / 'state')!r}\n"
            f"SUSHY_EMULATOR_AUTH_FILE = {str(htpasswd)!r}\n"
            f"SUSHY_EMULATOR_FAKE_SYSTEMS = {systems!r}\n"
        )
        if self.tls:
            self.cert, key = self_signed_cert(self.workdir)
            text += f"SUSHY_EMULATOR_SSL_CERT = {str(self.cert)!r}\n"
            text += f"SUSHY_EMULATOR_SSL_KEY = {str(key)!r}\n"
        cfg.write_text(text)
        return cfg

    def start(self, timeout: float = 30) -> None:
        exe = shutil.which("sushy-emulator")
        cmd = [exe] if exe else [sys.executable, "-m", "sushy_tools.emulator.main"]
        cfg = self._write_config()
        log = open(self.log_path, "wb")  # noqa: SIM115 (kept for the child's lifetime)
        self.proc = subprocess.Popen(
            [*cmd, "--config", str(cfg), "-i", "127.0.0.1", "-p", str(self.port), "--fake"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("SUSHY_")},
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sushy-emulator exited: {self.log_path.read_text()[-2000:]}")
            try:
                r = httpx.get(self.url + "/redfish/v1/", timeout=1, verify=False)
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("sushy-emulator did not come up")

    def system(self, i: int) -> dict:
        """A system as the emulator itself reports it (independent of our driver)."""
        r = httpx.get(
            f"{self.url}/redfish/v1/Systems/{self.systems[i]}",
            auth=(self.username, self._password),
            timeout=5,
            verify=str(self.cert) if self.cert else True,
        )
        r.raise_for_status()
        return r.json()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
