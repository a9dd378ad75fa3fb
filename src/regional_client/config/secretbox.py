"""Encryption of secrets at rest: ``enc:`` values in etcd and in the config file.

A value written as ``enc:<token>`` is a Fernet token (``cryptography``: AES-128-CBC with an
HMAC-SHA256 over it, a timestamp and a version byte) made with the regional client's key. Plain
values pass through unchanged, so encryption can be introduced gradually.

The key (a urlsafe-base64 32-byte Fernet key, from ``regional-client secret genkey``) is read
from, in order: ``secrets.key_file``; the environment variable named by ``secrets.key_env`` of
the regional client's own process; ``<state_dir>/secret.key`` if it exists. A key file readable
by group or others is refused.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from regional_client.config.secrets import SecretsConfig
from regional_client.core.errors import ConfigError

ENC_PREFIX = "enc:"
DEFAULT_KEY_NAME = "secret.key"


def generate_key() -> str:
    """A new random key, as text to store in a 0600 file or an environment variable."""
    return Fernet.generate_key().decode("ascii")


def is_encrypted(value: str) -> bool:
    return value.startswith(ENC_PREFIX)


class SecretBox:
    """Encrypts and decrypts ``enc:`` values with one key (or none: plain values only)."""

    def __init__(self, key: str | bytes | None, source: str = "") -> None:
        self.source = source
        self._fernet: Fernet | None = None
        if key:
            try:
                self._fernet = Fernet(key.strip())
            except (ValueError, TypeError):
                where = f" from {source}" if source else ""
                raise ConfigError(
                    f"secret key{where} is not a valid key (make one: regional-client secret "
                    "genkey)"
                ) from None

    @property
    def has_key(self) -> bool:
        return self._fernet is not None

    @classmethod
    def from_config(
        cls,
        config: SecretsConfig,
        state_dir: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> SecretBox:
        env = os.environ if env is None else env
        if config.key_file is not None:
            return cls(_read_key_file(config.key_file), str(config.key_file))
        if env.get(config.key_env):
            return cls(env[config.key_env], f"${config.key_env}")
        if state_dir is not None and (state_dir / DEFAULT_KEY_NAME).exists():
            path = state_dir / DEFAULT_KEY_NAME
            return cls(_read_key_file(path), str(path))
        return cls(None)

    def encrypt(self, plaintext: str) -> str:
        if self._fernet is None:
            raise ConfigError(
                "no secret key configured (secrets.key_file or the key environment variable)"
            )
        return ENC_PREFIX + self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, value: str) -> str:
        """The plaintext of an ``enc:`` value; any other value is returned as it is."""
        if not is_encrypted(value):
            return value
        if self._fernet is None:
            raise ConfigError(
                "an enc: secret was found but no secret key is configured "
                "(secrets.key_file, the key environment variable or <state_dir>/secret.key)"
            )
        try:
            return self._fernet.decrypt(value[len(ENC_PREFIX) :].encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError):
            raise ConfigError(
                "an enc: secret cannot be decrypted with the configured key "
                f"({self.source or 'key'}): wrong key or damaged value"
            ) from None


def _read_key_file(path: Path) -> str:
    try:
        st = path.stat()
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"secret key file {path} is accessible by others (chmod 600 it)")
        return path.read_text(encoding="ascii").strip()
    except OSError as e:
        raise ConfigError(f"secret key file {path}: cannot read: {e.strerror or e}") from None


def write_key_file(path: Path, key: str) -> None:
    """Create ``path`` (mode 0600, must not exist) holding ``key``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")


def clear_passwords(cfg: Any) -> list[str]:
    """Config keys holding a password in clear text (SPEC §10: never in clear at rest)."""
    found = []
    if cfg.etcd.password and not is_encrypted(cfg.etcd.password):
        found.append("etcd.password")
    if cfg.bmc.default_password and not is_encrypted(cfg.bmc.default_password):
        found.append("bmc.default_password")
    for sw in cfg.switch.switches():
        for field in ("password", "enable_password"):
            value = getattr(sw, field)
            if value and not is_encrypted(value):
                found.append(f"switch.{sw.name}.{field}")
    return found


def check_clear_passwords(cfg: Any, what: list[str], warn: Callable[[str], None]) -> None:
    """Apply ``secrets.clear_passwords`` to the clear passwords named in ``what``."""
    if not what:
        return
    text = (
        f"password(s) in clear text: {', '.join(what)} — encrypt them with "
        "'regional-client secret encrypt' (enc: values)"
    )
    if cfg.secrets.clear_passwords == "refuse":
        raise ConfigError(text + " (secrets.clear_passwords: refuse)")
    warn(text)


__all__ = [
    "DEFAULT_KEY_NAME",
    "ENC_PREFIX",
    "SecretBox",
    "check_clear_passwords",
    "clear_passwords",
    "generate_key",
    "is_encrypted",
    "write_key_file",
]
