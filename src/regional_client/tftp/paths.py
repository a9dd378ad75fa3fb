"""Safe resolution of client-supplied names inside one root directory (TFTP and HTTP boot).

Every name a network client sends goes through :meth:`SafeRoot.open`, which either returns an open
file descriptor of a *regular file* whose real path lies inside the root, or raises:

- :class:`~regional_client.core.errors.NotFound` (TFTP "file not found", HTTP 404) for names that do
  not exist, and
- :class:`~regional_client.core.errors.ForbiddenError` (TFTP "access violation", HTTP 403) for names
  that are malformed or would leave the root: ``..`` components, NUL and control characters,
  backslashes, non-UTF-8 bytes, hidden components (``.name``, which also hides our own temporary
  files), symlinks whose target is outside the root, directories, device files and FIFOs.

A leading ``/`` is allowed and means the root (GRUB and many PXE ROMs send ``/grub/grub.cfg``); an
"absolute" name such as ``/etc/passwd`` is therefore looked up as ``<root>/etc/passwd``, never on
the host's file system. After opening, the descriptor's real path (``/proc/self/fd``) is checked
again, so a symlink swapped in between the check and the open cannot escape the root.

PXE firmware and some bootloaders upper-case the MAC in ``pxelinux.cfg/01-AA-BB-...``; when the
exact name does not exist and it contains such a MAC, the lower-case spelling (the one we write)
is tried.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from regional_client.core.errors import ForbiddenError, NotFound

__all__ = ["FileEntry", "OpenedFile", "SafeRoot", "normalize_name"]

MAX_NAME = 1024
_CTRL = re.compile(r"[\x00-\x1f\x7f]")
_MAC_PART = re.compile(r"01-(?:[0-9A-Fa-f]{2}-){5}[0-9A-Fa-f]{2}")


@dataclass(frozen=True, slots=True)
class OpenedFile:
    """An open regular file inside the root. The caller owns ``fd`` and must close it."""

    fd: int
    name: str
    """Root-relative POSIX name actually opened (after MAC case folding)."""
    size: int
    mtime: float


@dataclass(frozen=True, slots=True)
class FileEntry:
    name: str
    size: int
    mtime: float


def normalize_name(raw: str | bytes) -> str:
    """Turn a client-supplied name into a clean root-relative POSIX path, or raise.

    Raises:
        ForbiddenError: the name is malformed or tries to leave the root (``reason`` says why).
    """
    if isinstance(raw, bytes | bytearray):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise ForbiddenError("file name is not UTF-8", reason="encoding") from None
    if not raw or len(raw) > MAX_NAME:
        raise ForbiddenError("empty or overlong file name", reason="length")
    if _CTRL.search(raw):
        raise ForbiddenError("control character in file name", reason="control_char")
    if "\\" in raw:
        raise ForbiddenError("backslash in file name", reason="backslash")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    for p in parts:
        if p == "..":
            raise ForbiddenError("'..' in file name", reason="traversal")
        if p.startswith("."):
            raise ForbiddenError("hidden path component", reason="hidden")
    if not parts:
        raise ForbiddenError("file name names the root", reason="empty")
    return "/".join(parts)


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip("/") + "/")


class SafeRoot:
    """One served directory. Cheap to construct; resolves the root's real path once."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._real_root = os.path.realpath(self.root)

    def open(self, raw: str | bytes) -> OpenedFile:
        """Open a client-supplied name for reading (see the module docstring for the rules)."""
        name = normalize_name(raw)
        try:
            return self._open_name(name)
        except NotFound:
            last = name.rsplit("/", 1)[-1]
            folded = _MAC_PART.sub(lambda m: m.group(0).lower(), last)
            if folded == last:
                raise
            return self._open_name(name[: len(name) - len(last)] + folded)

    def _open_name(self, name: str) -> OpenedFile:
        real = os.path.realpath(os.path.join(self._real_root, name))
        if not _inside(real, self._real_root) or real == self._real_root:
            raise ForbiddenError("path leaves the served root", reason="outside_root")
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW
        try:
            fd = os.open(real, flags)
        except FileNotFoundError:
            raise NotFound(f"no such file: {name}", reason="not_found") from None
        except NotADirectoryError:
            raise NotFound(f"no such file: {name}", reason="not_found") from None
        except OSError as e:
            raise ForbiddenError(f"cannot open: {e.strerror}", reason="open_failed") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ForbiddenError("not a regular file", reason="not_regular")
            opened = os.readlink(f"/proc/self/fd/{fd}")
            if not _inside(opened, self._real_root):
                raise ForbiddenError("path leaves the served root", reason="outside_root")
        except BaseException:
            os.close(fd)
            raise
        return OpenedFile(fd, name, st.st_size, st.st_mtime)

    def list(self, limit: int = 10000, prefix: str = "") -> Iterator[FileEntry]:
        """Regular files under the root (symlinks only if they stay inside), sorted per dir."""
        start = self._real_root
        if prefix:
            start = os.path.join(start, normalize_name(prefix))
        count = 0
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fn in sorted(filenames):
                if fn.startswith("."):
                    continue
                full = os.path.join(dirpath, fn)
                real = os.path.realpath(full)
                if not _inside(real, self._real_root):
                    continue
                try:
                    st = os.stat(real)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                yield FileEntry(os.path.relpath(full, self._real_root), st.st_size, st.st_mtime)
                count += 1
                if count >= limit:
                    return
