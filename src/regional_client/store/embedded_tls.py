"""TLS with client certificates for the embedded etcd: made once under the state dir.

An embedded etcd without authentication answers anyone who can reach its loopback port: any
local user or process (a hardware script run by mistake on the host, a compromised service)
could read every task and BMC credential or stop the product. So the embedded etcd listens for
TLS only and demands a client certificate signed by a CA of its own (``--client-cert-auth``);
the regional client and the CLI (run with the same config, as a user who can read the state dir)
present ``client.pem``. Made at first start with ``cryptography``:

``<state_dir>/etcd/tls/``: ``ca.pem`` (the trust anchor), ``server.pem``/``server-key.pem``
(127.0.0.1, also used for the peer listener), ``client.pem``/``client-key.pem``. Every file is
mode 0600 in a 0700 folder. The CA's private key is not kept: nobody can mint another client
certificate later (delete the folder to make a new set; clients then need the new one).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["EmbeddedTls", "ensure_tls"]

_DAYS = 3650
_NAMES = ("ca.pem", "server.pem", "server-key.pem", "client.pem", "client-key.pem")


@dataclass(frozen=True)
class EmbeddedTls:
    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.dir / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.dir / "server-key.pem"

    @property
    def client_cert(self) -> Path:
        return self.dir / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.dir / "client-key.pem"

    def complete(self) -> bool:
        return all((self.dir / n).is_file() for n in _NAMES)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(
    cn: str,
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
    *,
    server: bool,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if server
                                                    else [])  # fmt: skip
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if server:
        b = b.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
    return b.sign(ca_key, hashes.SHA256())


def ensure_tls(etcd_dir: Path) -> EmbeddedTls:
    """The certificates under ``etcd_dir/tls``, made if any is missing."""
    tls = EmbeddedTls(Path(etcd_dir) / "tls")
    if tls.complete():
        return tls
    tls.dir.mkdir(parents=True, exist_ok=True)
    os.chmod(tls.dir, 0o700)
    now = dt.datetime.now(dt.UTC)
    ca_key, ca_name = _key(), _name("regional-client embedded etcd CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    for cn, server, stem in (("127.0.0.1", True, "server"), ("regional-client", False, "client")):
        key = _key()
        cert = _issue(cn, key, ca_key, ca_name, server=server)
        _write(tls.dir / f"{stem}-key.pem", _pem_key(key))
        _write(tls.dir / f"{stem}.pem", cert.public_bytes(pem))
    _write(tls.ca, ca.public_bytes(pem))  # last: complete() is true only once all exist
    return tls
