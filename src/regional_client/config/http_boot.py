"""``http_boot:`` section: kernels, initrds and iPXE scripts over HTTP on the API port."""

from __future__ import annotations

from pydantic import field_validator

from regional_client.config.base import Section


class HttpBootConfig(Section):
    enabled: bool = True
    """Serve ``tftp.root_dir`` read-only over HTTP (no authentication: firmware has none)."""
    path_prefix: str = "/boot"
    """URL path the root is served under; per-MAC iPXE scripts at ``<prefix>/ipxe/<mac>``."""

    @field_validator("path_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        v = "/" + v.strip("/")
        if (
            v == "/"
            or v.startswith("/api/")
            or not v.replace("/", "").replace("-", "").replace("_", "").isalnum()
        ):
            raise ValueError("use a path like /boot (letters, digits, '-', '_'; not under /api)")
        return v
