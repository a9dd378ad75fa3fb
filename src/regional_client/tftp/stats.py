"""TFTP metric families and file-name normalisation for bounded label cardinality.

``regional_client_tftp_requests_total{idc,file}``: ``file`` is the served name with per-node parts
replaced by placeholders (``pxelinux.cfg/01-<mac>``, ``grub/grub.cfg-01-<mac>``,
``pxelinux.cfg/<ip-hex>``, ``ipxe/01-<mac>.ipxe``, ``<uuid>``), so ten thousand servers make one
series, not ten thousand. Names that were refused are counted as ``<not_found>`` or ``<denied>``
(they are client-controlled and unbounded).
"""

from __future__ import annotations

import re

from regional_client.core.metrics import Metrics

__all__ = ["TftpMetrics", "metric_file_label"]

_SUBS = [
    (re.compile(r"01-(?:[0-9a-fA-F]{2}-){5}[0-9a-fA-F]{2}"), "01-<mac>"),
    (re.compile(r"(?:[0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}"), "<mac>"),
    (
        re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
        "<uuid>",
    ),
    (re.compile(r"(?<=pxelinux\.cfg/)[0-9A-Fa-f]{1,8}$"), "<ip-hex>"),
    (re.compile(r"(?<=grub\.cfg-)[0-9A-Fa-f]{1,8}$"), "<ip-hex>"),
]


def metric_file_label(name: str) -> str:
    for rx, repl in _SUBS:
        name = rx.sub(repl, name)
    return name


class TftpMetrics:
    DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)

    def __init__(self, metrics: Metrics) -> None:
        self.idc = metrics.idc
        self.requests = metrics.counter(
            "regional_client_tftp_requests_total", "TFTP read requests by served file", ["file"]
        )
        self.bytes_sent = metrics.counter(
            "regional_client_tftp_bytes_sent_total", "TFTP DATA payload bytes sent"
        )
        self.retransmits = metrics.counter(
            "regional_client_tftp_retransmits_total", "TFTP DATA/OACK packets sent again"
        )
        self.errors = metrics.counter(
            "regional_client_tftp_errors_total",
            "TFTP requests refused or transfers failed",
            ["kind"],
        )
        self.duration = metrics.histogram(
            "regional_client_tftp_transfer_duration_seconds",
            "TFTP transfer duration",
            ["result"],
            buckets=self.DURATION_BUCKETS,
        )
        self.active = metrics.gauge("regional_client_tftp_active_transfers", "Transfers in flight")

    def request(self, label: str) -> None:
        self.requests.labels(idc=self.idc, file=metric_file_label(label)).inc()

    def error(self, kind: str) -> None:
        self.errors.labels(idc=self.idc, kind=kind).inc()

    def finished(self, ok: bool, seconds: float, nbytes: int, retransmits: int) -> None:
        self.duration.labels(idc=self.idc, result="ok" if ok else "failed").observe(seconds)
        self.bytes_sent.labels(idc=self.idc).inc(nbytes)
        if retransmits:
            self.retransmits.labels(idc=self.idc).inc(retransmits)
