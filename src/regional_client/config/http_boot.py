"""``http_boot:`` section: kernels, initrds and iPXE scripts over HTTP on the API port."""

from __future__ import annotations

from regional_client.config.base import Section


class HttpBootConfig(Section):
    enabled: bool = True
    path_prefix: str = "/boot"
