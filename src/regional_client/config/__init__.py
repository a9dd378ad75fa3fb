"""Configuration: the seed's YAML schema plus our extensions, validated with pydantic.

Each section lives in its own module (ironic ``conf/<group>.py`` style). :func:`load_config`
reads a YAML file, applies the ``IDC`` and ``ETCD_ENDPOINTS`` environment overrides and turns
every validation problem into one :class:`~regional_client.core.errors.ConfigError` whose message
names the key path and the problem, e.g. ``dhcp.ip_range.start: not an IPv4 address``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydantic
import yaml
from pydantic import Field, field_validator

from regional_client.config.api import AdminToken, ApiConfig
from regional_client.config.base import Duration, Section, parse_duration
from regional_client.config.bmc import BmcConfig
from regional_client.config.dhcp import DhcpConfig
from regional_client.config.etcd import EmbeddedEtcdConfig, EtcdConfig
from regional_client.config.http_boot import HttpBootConfig
from regional_client.config.logging import LoggingConfig
from regional_client.config.pxe import PxeConfig
from regional_client.config.secrets import SecretsConfig
from regional_client.config.switch import SwitchConfig, SwitchEntry
from regional_client.config.tftp import TftpConfig
from regional_client.config.workflow import WorkflowConfig
from regional_client.core.errors import ConfigError

_IDC_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class Config(Section):
    idc: str = "dc1"
    api_port: int = Field(8081, ge=0, le=65535)
    state_dir: Path = Path("/var/lib/regional-client")
    """Embedded etcd data, audit log, secrets key (when not configured elsewhere)."""
    api: ApiConfig = Field(default_factory=ApiConfig)
    etcd: EtcdConfig = Field(default_factory=EtcdConfig)
    dhcp: DhcpConfig = Field(default_factory=DhcpConfig)
    tftp: TftpConfig = Field(default_factory=TftpConfig)
    http_boot: HttpBootConfig = Field(default_factory=HttpBootConfig)
    pxe: PxeConfig = Field(default_factory=PxeConfig)
    switch: SwitchConfig = Field(default_factory=SwitchConfig)
    bmc: BmcConfig = Field(default_factory=BmcConfig)
    workflow: WorkflowConfig = Field(default_factory=WorkflowConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    secrets: SecretsConfig = Field(default_factory=SecretsConfig)

    @field_validator("idc")
    @classmethod
    def _idc(cls, v: str) -> str:
        if not _IDC_RE.match(v):
            raise ValueError("must be letters, digits, '-', '_' or '.' (it is part of etcd keys)")
        return v

    @property
    def regional_url(self) -> str:
        """The URL agents reach this instance at."""
        if self.api.public_url:
            return self.api.public_url.rstrip("/")
        host = str(self.dhcp.tftp_server or "127.0.0.1")
        return f"http://{host}:{self.api_port}"


_FRIENDLY = {
    "ipv4": "not an IPv4 address",
    "extra_forbidden": "unknown key",
    "missing": "required",
}


def _format_errors(err: pydantic.ValidationError) -> str:
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        etype = e["type"]
        if etype in _FRIENDLY:
            msg = _FRIENDLY[etype]
        elif "ipv4" in etype or "IPv4" in msg:
            msg = "not an IPv4 address"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        lines.append(f"{path}: {msg}")
    return "; ".join(lines)


def apply_env_overrides(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """``IDC`` and ``ETCD_ENDPOINTS`` override the file (as in the seed's compose file)."""
    data = dict(data)
    if env.get("IDC"):
        data["idc"] = env["IDC"]
    if env.get("ETCD_ENDPOINTS"):
        etcd = dict(data.get("etcd") or {})
        etcd["endpoints"] = env["ETCD_ENDPOINTS"]
        data["etcd"] = etcd
    return data


def config_from_dict(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Config:
    raw = apply_env_overrides(dict(data), os.environ if env is None else env)
    try:
        return Config.model_validate(raw)
    except pydantic.ValidationError as e:
        raise ConfigError(_format_errors(e)) from None


def load_config(path: str | Path | None, env: Mapping[str, str] | None = None) -> Config:
    """Read, override and validate a config file. ``None`` means all defaults."""
    if path is None:
        return config_from_dict({}, env)
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read: {e.strerror or e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{p}:{where}: not valid YAML: {getattr(e, 'problem', e)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping of sections")
    try:
        return config_from_dict(data, env)
    except ConfigError as e:
        raise ConfigError(f"{p}: {e.message}") from None


__all__ = [
    "AdminToken",
    "ApiConfig",
    "BmcConfig",
    "Config",
    "DhcpConfig",
    "Duration",
    "EmbeddedEtcdConfig",
    "EtcdConfig",
    "HttpBootConfig",
    "LoggingConfig",
    "PxeConfig",
    "SecretsConfig",
    "Section",
    "SwitchConfig",
    "SwitchEntry",
    "TftpConfig",
    "WorkflowConfig",
    "config_from_dict",
    "load_config",
    "parse_duration",
]
