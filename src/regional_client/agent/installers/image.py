"""``image`` installer: stream a disk image over HTTP onto a block device (or a file).

params::

    url          http(s) URL of the image (required)
    sha256       hex SHA-256 of the bytes served at ``url`` (required)
    target       block device (``/dev/sda``) or file path; default: the agent's --install-target
    compression  none | gzip | xz (default: from the URL suffix .gz/.xz, else none)
    size         expected size in bytes for progress when the server sends no Content-Length
    progress_step percent between progress reports (default 5)

The download is hashed while it is written (no second read of the disk). A dropped connection
resumes with an HTTP ``Range`` request when the server allows it (``Accept-Ranges: bytes``),
otherwise starts over; a few attempts with backoff, then failure. A checksum mismatch fails the
operation (a file target is removed). A target that is mounted (itself or a partition) is
refused, so the agent cannot overwrite the system it runs from.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import lzma
import os
import re
import stat
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from regional_client.agent.installers.base import OpResult, ProgressFn
from regional_client.core.logs import get_logger

log = get_logger("agent.image")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


class _Restart(Exception):
    """The server ignored our Range request: start the download over."""


@dataclass
class _Sink:
    """Where bytes go: hashes the (compressed) stream, decompresses, writes to ``fd``.

    Hashing, decompression and the write of one chunk run in a worker thread while the next
    chunk is read from the network (at most one chunk in flight, so order is kept).
    """

    fd: int
    compression: str
    received: int = 0
    written: int = 0
    hasher: Any = field(default_factory=hashlib.sha256)
    decomp: Any = None
    batch: int = 1 << 20
    pending: asyncio.Future[None] | None = None
    buf: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        assert self.pending is None and not self.buf, "drain() before reset()"
        self.received = self.written = 0
        self.hasher = hashlib.sha256()
        self.decomp = _decompressor(self.compression)
        os.lseek(self.fd, 0, os.SEEK_SET)

    async def feed(self, chunk: bytes) -> None:
        """Take a network chunk; batches of ``batch`` bytes go to the worker thread."""
        self.received += len(chunk)
        self.buf += chunk
        if len(self.buf) >= self.batch:
            await self._wait()
            data, self.buf = bytes(self.buf), bytearray()
            self.pending = asyncio.ensure_future(asyncio.to_thread(self._process, data))

    async def drain(self) -> None:
        """Write everything received so far (re-raising a write error)."""
        await self._wait()
        if self.buf:
            data, self.buf = bytes(self.buf), bytearray()
            await asyncio.to_thread(self._process, data)

    async def _wait(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            await pending

    def _process(self, chunk: bytes) -> None:
        self.hasher.update(chunk)
        data = self.decomp.decompress(chunk) if self.decomp is not None else chunk
        if data:
            _write_all(self.fd, data)
            self.written += len(data)


def _decompressor(compression: str) -> Any:
    """A streaming decompressor for ``compression`` (None for ``none``)."""
    if compression == "gzip":
        return zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header, auto-detected
    if compression == "xz":
        return lzma.LZMADecompressor()
    return None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _guess_compression(url: str) -> str:
    path = url.split("?", 1)[0].lower()
    if path.endswith((".gz", ".tgz")):
        return "gzip"
    if path.endswith(".xz"):
        return "xz"
    return "none"


def mounted_sources(mounts_file: Path = Path("/proc/mounts")) -> list[str]:
    try:
        lines = mounts_file.read_text().splitlines()
    except OSError:
        return []
    return [line.split()[0] for line in lines if line.strip()]


def _is_mounted(target: Path, mounts_file: Path) -> bool:
    t = str(target)
    for src in mounted_sources(mounts_file):
        if src == t or (src.startswith(t) and src[len(t) :].lstrip("p").isdigit()):
            return True
    return False


class ImageInstaller:
    """Streams an image to a disk; see the module docstring for ``params``."""

    name = "image"

    def __init__(
        self,
        default_target: str | None = None,
        *,
        attempts: int = 5,
        retry_delay: float = 1.0,
        chunk_size: int = 1 << 20,
        http_timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        mounts_file: Path = Path("/proc/mounts"),
    ) -> None:
        self.default_target = default_target
        self.attempts = attempts
        self.retry_delay = retry_delay
        self.chunk_size = chunk_size
        self.http_timeout = http_timeout
        self.transport = transport
        self.mounts_file = mounts_file

    async def install(self, params: dict[str, Any], progress: ProgressFn) -> OpResult:
        url = params.get("url")
        digest = str(params.get("sha256") or "")
        target = params.get("target") or self.default_target
        compression = params.get("compression") or _guess_compression(str(url or ""))
        problem = (
            "params.url is required (http or https)"
            if not isinstance(url, str) or not url.startswith(("http://", "https://"))
            else "params.sha256 must be 64 hex digits"
            if not _HEX64.match(digest)
            else "no target: give params.target or --install-target"
            if not target
            else f"unknown compression {compression!r} (none, gzip, xz)"
            if compression not in ("none", "gzip", "xz")
            else None
        )
        if problem:
            return OpResult(False, problem, exit_code=2)
        assert isinstance(url, str)
        target_path = Path(str(target))
        if _is_mounted(target_path, self.mounts_file):
            return OpResult(False, f"refusing to overwrite mounted {target_path}", exit_code=2)
        try:
            fd, is_file = _open_target(target_path)
        except OSError as e:
            return OpResult(False, f"cannot open {target_path}: {e.strerror}", exit_code=2)
        sink = _Sink(fd, compression, batch=self.chunk_size)
        try:
            step = float(params.get("progress_step", 5))
            await self._download(url, sink, params.get("size"), step, progress)
            await sink.drain()
            await asyncio.to_thread(os.fsync, fd)
        except (httpx.HTTPError, OSError, zlib.error, lzma.LZMAError, _Restart) as e:
            _discard(target_path, is_file)
            return OpResult(False, f"image download failed: {type(e).__name__}: {e}", exit_code=1)
        finally:
            with contextlib.suppress(Exception):
                await sink.drain()  # no worker may write after the close
            os.close(fd)
        if sink.decomp is not None and not sink.decomp.eof:
            _discard(target_path, is_file)
            return OpResult(False, f"{compression} stream ends early (truncated image?)", None, 1)
        got = sink.hasher.hexdigest()
        if got != digest.lower():
            _discard(target_path, is_file)
            return OpResult(
                False, f"sha256 mismatch: expected {digest.lower()}, got {got}", exit_code=1
            )
        await progress(100.0, f"image written to {target_path} and verified")
        return OpResult(
            True,
            f"wrote {sink.written} bytes to {target_path}, sha256 verified",
            exit_code=0,
        )

    async def _download(
        self, url: str, sink: _Sink, size: Any, step: float, progress: ProgressFn
    ) -> None:
        async with httpx.AsyncClient(
            timeout=self.http_timeout,
            transport=self.transport,
            trust_env=False,
            headers={"Accept-Encoding": "identity"},
        ) as http:
            for attempt in range(self.attempts):
                try:
                    await self._stream_once(http, url, sink, size, step, progress)
                    return
                except (httpx.TransportError, _Restart, _ServerError) as e:
                    if attempt + 1 >= self.attempts:
                        raise
                    await sink.drain()
                    if isinstance(e, _Restart):
                        sink.reset()
                    log.warning(
                        "image download interrupted, retrying",
                        action="image_retry",
                        url=url,
                        received=sink.received,
                        reason=str(e),
                    )
                    await asyncio.sleep(self.retry_delay * (2**attempt))

    async def _stream_once(
        self,
        http: httpx.AsyncClient,
        url: str,
        sink: _Sink,
        size: Any,
        step: float,
        progress: ProgressFn,
    ) -> None:
        headers = {"Range": f"bytes={sink.received}-"} if sink.received else {}
        async with http.stream("GET", url, headers=headers) as resp:
            if resp.status_code >= 500:
                raise _ServerError(f"HTTP {resp.status_code}")
            resp.raise_for_status()
            if sink.received and resp.status_code != 206:
                raise _Restart("server ignored the Range request")
            total = _total_size(resp, sink.received, size)
            last = -step
            async for chunk in resp.aiter_raw():
                await sink.feed(chunk)
                if total:
                    pct = min(99.0, 100.0 * sink.received / total)
                    if pct - last >= step:
                        last = pct
                        await progress(round(pct, 1), f"{sink.received}/{total} bytes")


class _ServerError(Exception):
    pass


def _total_size(resp: httpx.Response, offset: int, size: Any) -> int | None:
    if size:
        return int(size)
    crange = resp.headers.get("content-range", "")
    if "/" in crange and crange.rsplit("/", 1)[1].isdigit():
        return int(crange.rsplit("/", 1)[1])
    length = resp.headers.get("content-length")
    return offset + int(length) if length and length.isdigit() else None


def _open_target(path: Path) -> tuple[int, bool]:
    """Open for writing: a block device as is, a file created/truncated. (fd, is_file)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        if path.is_absolute() and path.parts[1:2] == ("dev",):
            raise  # a missing disk must not become a regular file in /dev
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), True
    if stat.S_ISBLK(st.st_mode):
        return os.open(path, os.O_WRONLY), False
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), True


def _discard(path: Path, is_file: bool) -> None:
    if is_file:
        path.unlink(missing_ok=True)


__all__ = ["ImageInstaller", "mounted_sources"]
