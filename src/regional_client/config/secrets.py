"""``secrets:`` section: where the key that decrypts ``enc:`` values comes from."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from regional_client.config.base import Section


class SecretsConfig(Section):
    key_file: Path | None = None
    """File holding the key (mode 0600). Default: ``secret.key`` in the state dir if present."""
    key_env: str = "REGIONAL_CLIENT_SECRET_KEY"
    """Environment variable of the regional client's own process holding the key."""
    clear_passwords: Literal["warn", "refuse"] = "warn"
    """A BMC, switch or etcd password in clear text (not ``enc:``) in the config file or in a
    task: ``warn`` (logged at start, printed by ``config check`` and ``task create``) or
    ``refuse`` (start and ``task create`` fail). ``task create`` encrypts a clear BMC password
    whenever a key is configured, either way."""
