"""A file response served from an already-open descriptor, with Range, HEAD and validators.

Why not Starlette's ``FileResponse`` (1.x, which does support Range): it re-opens the file by
path, which would undo the resolver's check-then-open guarantee (a symlink swapped in between
could escape the root), and it reads 64 KiB per worker-thread hop. This response reads the
descriptor the resolver opened, 1 MiB per ``os.pread`` in a worker thread (one thread hop per
MiB; ``bytes`` chunks pass through h11 uncopied; a preadv(RWF_NOWAIT) variant into a bytearray
cost more CPU, measured), so a large ramdisk streams without blocking the event loop.

Supported: ``Range: bytes=a-b | a- | -n`` (one range; several ranges get the whole file with
200, which RFC 9110 allows), ``If-Range`` (ETag or date), ``If-None-Match`` → 304, 416 with
``Content-Range: bytes */size`` for unsatisfiable ranges, HEAD with the same headers as GET.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import re
from email.utils import formatdate
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = ["CHUNK", "FdResponse", "parse_range"]

CHUNK = 1024 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_DIGITS = 18
_HUGE = 10**_DIGITS


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """``(start, end_exclusive)``, ``None`` (serve everything) or ``"unsatisfiable"``."""
    if not header:
        return None
    m = _RANGE.match(header.strip().replace(" ", ""))
    if not m:
        return None  # several ranges or a syntax we do not support: whole file
    first, last = m.groups()
    if not first and not last:
        return None
    # No file has 19 digits of bytes: longer numbers are clipped before int() (Python refuses
    # to convert more than 4,300 digits, which was a 500).
    if len(first) > _DIGITS:
        return "unsatisfiable"
    if len(last) > _DIGITS:
        last = str(_HUGE)
    if not first:  # suffix: the last n bytes
        n = int(last)
        if n == 0:
            return "unsatisfiable"
        return (max(0, size - n), size)
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if start >= size or (last and int(last) < start):
        return "unsatisfiable"
    return (start, end)


class FdResponse(Response):
    """ASGI response owning ``fd`` (closed when done). A Starlette ``Response`` subclass only so
    that FastAPI passes it through untouched; it builds its own headers."""

    media_type: str

    def __init__(
        self,
        fd: int,
        size: int,
        mtime: float,
        name: str,
        media_type: str | None = None,
        on_sent: Any = None,
    ) -> None:
        self.fd, self.size, self.mtime, self.name = fd, size, mtime, name
        self.media_type = media_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        self.etag = f'"{size:x}-{int(mtime * 1e6):x}"'
        self.last_modified = formatdate(mtime, usegmt=True)
        self.on_sent = on_sent
        self.status_code = 200
        self.background = None
        self.raw_headers = []

    def _header_list(self, extra: dict[str, str]) -> list[tuple[bytes, bytes]]:
        h = {
            "content-type": self.media_type,
            "accept-ranges": "bytes",
            "etag": self.etag,
            "last-modified": self.last_modified,
            **extra,
        }
        return [(k.encode(), v.encode()) for k, v in h.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._respond(scope, send)
        finally:
            os.close(self.fd)

    async def _respond(self, scope: Scope, send: Send) -> None:
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in scope["headers"]}
        head = scope["method"] == "HEAD"
        if headers.get("if-none-match") in (self.etag, "*"):
            await self._start(send, 304, {})
            await send({"type": "http.response.body", "body": b""})
            return
        rng: tuple[int, int] | str | None = parse_range(headers.get("range"), self.size)
        if_range = headers.get("if-range")
        if if_range and if_range not in (self.etag, self.last_modified):
            rng = None
        if rng == "unsatisfiable":
            await self._start(send, 416, {"content-range": f"bytes */{self.size}"})
            await send({"type": "http.response.body", "body": b""})
            return
        if isinstance(rng, tuple):
            start, end = rng
            status = 206
            extra = {"content-range": f"bytes {start}-{end - 1}/{self.size}"}
        else:
            start, end, status, extra = 0, self.size, 200, {}
        extra["content-length"] = str(end - start)
        await self._start(send, status, extra)
        if head:
            await send({"type": "http.response.body", "body": b""})
            return
        sent = await self._stream(send, start, end)
        if self.on_sent is not None:
            self.on_sent(sent)

    async def _start(self, send: Send, status: int, extra: dict[str, str]) -> None:
        await send(
            {"type": "http.response.start", "status": status, "headers": self._header_list(extra)}
        )

    async def _read(self, n: int, pos: int) -> bytes:
        """One chunk as ``bytes`` (h11 then passes it to the socket without another copy), read
        in a worker thread so a cold page never blocks the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, os.pread, self.fd, n, pos)

    async def _stream(self, send: Send, start: int, end: int) -> int:
        pos = start
        while pos < end:
            data = await self._read(min(CHUNK, end - pos), pos)
            if not data:
                break  # file shrank: the client sees a short body and retries
            pos += len(data)
            await send({"type": "http.response.body", "body": data, "more_body": pos < end})
        if pos < end or start == end:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        return pos - start
