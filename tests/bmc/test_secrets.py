"""enc: secrets: the box, key sources, the CLI, and decryption of task passwords."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from regional_client.config.bmc import BmcConfig
from regional_client.config.secretbox import SecretBox, generate_key, write_key_file
from regional_client.config.secrets import SecretsConfig
from regional_client.core.audit import Audit
from regional_client.core.errors import ConfigError
from regional_client.core.metrics import Metrics
from regional_client.drivers.bmc.controller import BmcController

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_roundtrip_and_plain_passthrough() -> None:
    box = SecretBox(generate_key())
    enc = box.encrypt("hunter2")
    assert enc.startswith("enc:") and "hunter2" not in enc
    assert box.decrypt(enc) == "hunter2"
    assert box.decrypt("plain") == "plain"


def test_wrong_key_or_no_key_is_a_clear_error() -> None:
    enc = SecretBox(generate_key()).encrypt("x")
    with pytest.raises(ConfigError, match="wrong key or damaged"):
        SecretBox(generate_key(), "k").decrypt(enc)
    with pytest.raises(ConfigError, match="no secret key is configured"):
        SecretBox(None).decrypt(enc)
    with pytest.raises(ConfigError, match="not a valid key"):
        SecretBox("short")


def test_key_sources(tmp_path: Path) -> None:
    key = generate_key()
    kf = tmp_path / "k"
    write_key_file(kf, key)
    assert oct(kf.stat().st_mode & 0o777) == "0o600"
    enc = SecretBox(key).encrypt("pw")
    assert SecretBox.from_config(SecretsConfig(key_file=kf), env={}).decrypt(enc) == "pw"
    env = {"REGIONAL_CLIENT_SECRET_KEY": key}
    assert SecretBox.from_config(SecretsConfig(), env=env).decrypt(enc) == "pw"
    (tmp_path / "state").mkdir()
    write_key_file(tmp_path / "state" / "secret.key", key)
    box = SecretBox.from_config(SecretsConfig(), tmp_path / "state", env={})
    assert box.decrypt(enc) == "pw"
    assert not SecretBox.from_config(SecretsConfig(), tmp_path, env={}).has_key
    os.chmod(kf, 0o644)
    with pytest.raises(ConfigError, match="accessible by others"):
        SecretBox.from_config(SecretsConfig(key_file=kf), env={})


def _cli(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    e = {"PATH": os.environ["PATH"], "PYTHONPATH": SRC, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "regional_client", "secret", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=e,
        timeout=60,
    )


def test_cli_genkey_and_encrypt_from_stdin(tmp_path: Path) -> None:
    kf = tmp_path / "key"
    r = _cli("genkey", "--out", str(kf))
    assert r.returncode == 0, r.stderr
    assert oct(kf.stat().st_mode & 0o777) == "0o600"
    assert _cli("genkey", "--out", str(kf)).returncode == 1  # never overwrites a key

    r = _cli("encrypt", "--key-file", str(kf), stdin="s3cr3t-BMC\n")
    assert r.returncode == 0, r.stderr
    enc = r.stdout.strip()
    assert enc.startswith("enc:") and "s3cr3t-BMC" not in r.stdout + r.stderr
    box = SecretBox.from_config(SecretsConfig(key_file=kf), env={})
    assert box.decrypt(enc) == "s3cr3t-BMC"

    key = kf.read_text().strip()
    r = _cli("encrypt", stdin="other\n", env={"REGIONAL_CLIENT_SECRET_KEY": key})
    assert r.returncode == 0 and box.decrypt(r.stdout.strip()) == "other"
    r = _cli("encrypt", stdin="x\n")
    assert r.returncode == 1 and "no secrets key" in r.stderr
    r = _cli("encrypt", "--key-file", str(kf), stdin="")
    assert r.returncode == 1 and "empty secret" in r.stderr


def test_controller_decrypts_task_password_and_fills_defaults(tmp_path: Path) -> None:
    box = SecretBox(generate_key())
    cfg = BmcConfig(default_username="root", default_password=box.encrypt("dflt"), protocol="ipmi")
    ctl = BmcController(cfg, Metrics("t1"), Audit(None, "t1"), secrets=box)
    t = ctl.target_for({"sn": "SN9", "bmc": {"ip": "127.0.0.1"}})
    assert (t.username, t.password, t.type, t.port, t.sn) == ("root", "dflt", "ipmi", None, "SN9")
    assert "dflt" not in repr(t)
    t = ctl.target_for(
        {
            "bmc": {
                "ip": "::1",
                "username": "u",
                "password": box.encrypt("p"),
                "type": "redfish",
                "port": 8443,
            }
        },
        sn="SN8",
    )
    assert (t.username, t.password, t.type, t.port) == ("u", "p", "redfish", 8443)
    assert t.name == "redfish://[::1]:8443"


def test_build_bmc_gets_the_secret_box(tmp_path: Path) -> None:
    from regional_client.config import config_from_dict
    from regional_client.core.audit import Audit
    from regional_client.core.metrics import Metrics
    from regional_client.daemon.components import build_bmc

    kf = tmp_path / "key"
    write_key_file(kf, generate_key())
    cfg = config_from_dict({"state_dir": str(tmp_path), "secrets": {"key_file": str(kf)}}, env={})
    box = SecretBox.from_config(cfg.secrets)
    ctl = build_bmc(cfg, Metrics("t"), Audit(None, "t"), box)
    assert isinstance(ctl, BmcController)
    bmc = {"ip": "127.0.0.1", "username": "u", "password": box.encrypt("pw")}
    assert ctl.target_for({"bmc": bmc}, sn="SN1").password == "pw"

    off = config_from_dict({"state_dir": str(tmp_path), "bmc": {"enabled": False}}, env={})
    assert build_bmc(off, Metrics("t"), Audit(None, "t"), box) is None
