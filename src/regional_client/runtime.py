"""The running instance: configuration, store, cache, metrics, audit and component services.

Components are services with ``async start()`` / ``async stop()``; they receive what they need
(their config section, the store, metrics, audit) explicitly, never a global.
"""

from __future__ import annotations

from typing import Any, Protocol

from regional_client.audit import Audit
from regional_client.config import Config
from regional_client.metrics import Metrics


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Runtime:
    """Holds the shared objects of one regional client instance (filled in by ``app.build``)."""

    def __init__(self, config: Config, metrics: Metrics | None = None, audit: Audit | None = None):
        self.config = config
        self.metrics = metrics or Metrics(config.idc)
        self.audit = audit or Audit(None, config.idc)
        self.store: Any = None
        self.cache: Any = None
        self.services: dict[str, Any] = {}
