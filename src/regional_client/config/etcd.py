"""``etcd:`` section: external cluster endpoints or the embedded single-member etcd."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from regional_client.config.base import Duration, Section


class EmbeddedEtcdConfig(Section):
    binary: str = "etcd"
    """etcd server binary, looked up on PATH."""
    client_port: int = Field(0, ge=0, le=65535)
    """Loopback client port; 0 picks a free one at start."""
    peer_port: int = Field(0, ge=0, le=65535)
    """Loopback peer port; 0 picks a free one at start."""
    restart_backoff: Duration = 1.0
    """Delay before restarting an embedded etcd that died (doubles up to 30 s)."""


class EtcdConfig(Section):
    endpoints: list[str] = Field(default_factory=list)
    """``host:port`` or URLs. Empty: start and supervise an embedded etcd under the state dir."""
    dial_timeout: Duration = 5.0
    request_timeout: Duration = 10.0
    username: str | None = None
    password: str | None = None
    """May be ``enc:...`` (encrypted with the secrets key)."""
    ca_cert: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    embedded: EmbeddedEtcdConfig = Field(default_factory=EmbeddedEtcdConfig)

    @field_validator("endpoints", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        if isinstance(v, str):
            return [p.strip() for p in v.split(",") if p.strip()]
        return v

    @property
    def is_embedded(self) -> bool:
        return not self.endpoints
