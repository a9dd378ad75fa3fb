"""Bounds on every HTTP connection, in the protocol layer where uvicorn leaves them open.

What uvicorn 0.54 with httptools gives by itself (measured, docs/security.md): no limit on
the request head (a 1 MiB header line is parsed and kept), no time limit for a request head to
arrive (a connection that sends one byte every few seconds is kept for ever: ~1,100 of them
exhausted the process's descriptors), no connection cap (``limit_concurrency`` answers 503 only
once a request head is complete, so slow heads never reach it), and no body limit (a 64 MiB
body was buffered whole: +351 MiB RSS). This subclass of its httptools protocol adds, per
listener:

* ``max_connections`` and ``max_connections_per_source``: a connection past either is closed at
  once, before anything is read;
* ``header_timeout``: a request head must be complete this many seconds after its connection
  opened (or its previous response finished) — else the connection is closed;
* ``max_header_bytes``: a longer head gets 431 and the connection is closed;
* ``max_body_bytes`` (``Content-Length`` or chunked) and ``body_timeout``: 413 / close;

each counted in ``regional_client_limit_hits_total{limit}`` and logged once per source per
minute (:class:`~regional_client.core.limits.LimitHits`).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from regional_client.config.api import HttpLimits
from regional_client.core.limits import LimitHits

__all__ = ["Guard", "guarded_protocol"]


@dataclass
class Guard:
    """What the connections of one listener share: the limits and who is connected."""

    limits: HttpLimits
    hits: LimitHits
    per_source: Counter[str] = field(default_factory=Counter)
    open: int = 0


def _reply(status: bytes, reason: bytes) -> bytes:
    return b"HTTP/1.1 " + status + b" " + reason + (
        b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )


class _GuardedProtocol(HttpToolsProtocol):
    guard: Guard

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        g, lim = self.guard, self.guard.limits
        self._source = self.client[0] if self.client else "-"
        self._counted = False
        self._timer: asyncio.TimerHandle | None = None
        self._head = 0
        self._tail = b""
        self._body = 0
        if g.open >= lim.max_connections:
            return self._drop("http_connections")
        if g.per_source[self._source] >= lim.max_connections_per_source:
            return self._drop("http_connections_per_source")
        g.open += 1
        g.per_source[self._source] += 1
        self._counted = True
        self._arm(lim.header_timeout, "http_header_timeout")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._counted:
            g = self.guard
            g.open -= 1
            g.per_source[self._source] -= 1
            if g.per_source[self._source] <= 0:
                del g.per_source[self._source]
            self._counted = False
        super().connection_lost(exc)

    # ---- timers ---------------------------------------------------------------------------

    def _arm(self, seconds: float, limit: str) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._expired, limit)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self, limit: str) -> None:
        self._timer = None
        self._drop(limit)

    def _drop(self, limit: str, answer: bytes | None = None, **fields: Any) -> None:
        self.guard.hits.hit(limit, self._source, **fields)
        if answer is not None and not self.transport.is_closing():
            self.transport.write(answer)
        self.transport.close()

    # ---- parsing --------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if self._head >= 0:
            # Bytes of the head in this chunk: up to its blank line, if the chunk holds it (the
            # 3 bytes kept from the last chunk find one split across two chunks).
            seen = self._tail + data
            end = seen.find(b"\r\n\r\n")
            head = len(data) if end < 0 else end + 4 - len(self._tail)
            self._tail = seen[-3:]
            if self._head + head > self.guard.limits.max_header_bytes:
                self._drop("http_header_size", _reply(b"431", b"Request Header Fields Too Large"))
                return
            self._head += head
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._body = 0
        if self._timer is None:
            self._arm(self.guard.limits.header_timeout, "http_header_timeout")

    def on_headers_complete(self) -> None:
        self._head = -1  # the head is complete: body bytes are not head bytes
        lim = self.guard.limits
        length = _content_length(self.headers)
        if length is not None and length > lim.max_body_bytes:
            self._disarm()
            return self._drop("http_body_size", _reply(b"413", b"Content Too Large"), size=length)
        self._arm(lim.body_timeout, "http_body_timeout")
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self.transport.is_closing():
            return
        self._body += len(body)
        if self._body > self.guard.limits.max_body_bytes:
            self._disarm()
            return self._drop("http_body_size", _reply(b"413", b"Content Too Large"))
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Idle now: uvicorn's keep-alive timer runs; the next head gets its own deadline when
        # its first byte arrives (on_message_begin).
        self._head, self._tail = 0, b""


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value[:20])
            except ValueError:
                return None
    return None


def guarded_protocol(guard: Guard) -> type[HttpToolsProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` enforcing ``guard``'s limits."""
    return type("GuardedHttpToolsProtocol", (_GuardedProtocol,), {"guard": guard})
