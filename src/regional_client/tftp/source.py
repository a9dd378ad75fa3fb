"""Where transferred bytes come from: the narrow ``FileSource.open(name, peer)`` hook.

The server never opens files itself. It asks a :class:`FileSource` for a :class:`ResponseData`
(size + positional reads), so content can come from the served directory (:class:`RootSource`,
the default) or be rendered per client (wrap the root source and return :class:`MemoryData` for
some names, e.g. a per-node iPXE or GRUB config; fbtftp's ``get_response_data`` idea).

``read_into`` fills a caller-owned buffer at an absolute offset, so the hot path reuses one buffer
per transfer and reads with ``os.preadv`` (no per-block allocation, no shared file position).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from regional_client.core.errors import ForbiddenError
from regional_client.tftp.paths import SafeRoot

__all__ = [
    "NETASCII_MAX",
    "FdData",
    "FileSource",
    "MemoryData",
    "ResponseData",
    "RootSource",
    "to_netascii",
]

NETASCII_MAX = 16 * 1024 * 1024
"""netascii transfers are converted in memory; larger files must use octet mode."""


class ResponseData(Protocol):
    name: str
    """Root-relative name of what is served (used for logs and metric labels)."""
    size: int

    def read_into(self, buf: memoryview, offset: int) -> int:
        """Fill ``buf`` from ``offset``; return the byte count (short only at end of data)."""
        ...

    def close(self) -> None: ...


class FileSource(Protocol):
    def open(self, name: bytes, peer: tuple[str, int]) -> ResponseData:
        """Resolve a client's requested name. Raise NotFound or ForbiddenError to refuse."""
        ...


class FdData:
    """A regular file, read with ``os.preadv`` into the caller's buffer."""

    __slots__ = ("fd", "name", "size")

    def __init__(self, fd: int, name: str, size: int) -> None:
        self.fd, self.name, self.size = fd, name, size

    def read_into(self, buf: memoryview, offset: int) -> int:
        return os.preadv(self.fd, [buf], offset)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class MemoryData:
    """Bytes rendered in memory (generated configs, netascii conversions)."""

    __slots__ = ("_data", "name", "size")

    def __init__(self, name: str, data: bytes) -> None:
        self.name, self._data, self.size = name, memoryview(data), len(data)

    def read_into(self, buf: memoryview, offset: int) -> int:
        chunk = self._data[offset : offset + len(buf)]
        buf[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        pass


def to_netascii(data: bytes) -> bytes:
    """RFC 764 line endings: CR → CR NUL, LF → CR LF."""
    return data.replace(b"\r", b"\r\0").replace(b"\n", b"\r\n")


class RootSource:
    """Files under one directory, resolved with :class:`~regional_client.tftp.paths.SafeRoot`."""

    def __init__(self, root: Path | str) -> None:
        self.root = SafeRoot(root)

    def open(self, name: bytes, peer: tuple[str, int]) -> ResponseData:
        f = self.root.open(name)
        return FdData(f.fd, f.name, f.size)


def read_all(data: ResponseData) -> bytes:
    """Whole content (used for netascii conversion of small files)."""
    if data.size > NETASCII_MAX:
        raise ForbiddenError("file too large for netascii mode; use octet", reason="netascii")
    buf = bytearray(data.size)
    n = data.read_into(memoryview(buf), 0)
    return bytes(buf[:n])
