"""Prometheus metrics: one registry per running instance, every family labelled ``idc``.

Components create their own families on the registry they are given::

    m = core.metrics
    leases = m.gauge("regional_client_dhcp_leases_total", "DHCP leases held")
    leases.labels(idc=m.idc).set(12)

``metrics.counter/gauge/histogram`` always add the ``idc`` label first, and return the existing
family when asked twice for the same name (so tests that build several components on one registry
do not trip over duplicate registration).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self, idc: str, registry: CollectorRegistry | None = None) -> None:
        self.idc = idc
        self.registry = registry or CollectorRegistry()
        self._families: dict[str, Any] = {}

    def _get(self, cls: type, name: str, doc: str, labels: Sequence[str], **kw: Any) -> Any:
        fam = self._families.get(name)
        if fam is None:
            fam = cls(name, doc, ["idc", *labels], registry=self.registry, **kw)
            self._families[name] = fam
        return fam

    def counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        return self._get(Counter, name, doc, labels)

    def gauge(self, name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        return self._get(Gauge, name, doc, labels)

    def histogram(
        self,
        name: str,
        doc: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] | None = None,
    ) -> Histogram:
        kw = {"buckets": tuple(buckets)} if buckets else {}
        return self._get(Histogram, name, doc, labels, **kw)

    def render(self) -> bytes:
        return generate_latest(self.registry)
