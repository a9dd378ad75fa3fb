"""Putting DATA blocks on the wire: one ``send`` per block, or UDP GSO batches.

Per block, the plain path does ``os.preadv`` into a buffer owned by the transfer, writes the
4-byte header with ``struct.pack_into`` and sends a pre-made memoryview: no allocation per block.

For windowed transfers (RFC 7440) on Linux, :class:`BlockSender` uses UDP generic segmentation
offload (``UDP_SEGMENT``, Linux 4.18+): a window of N blocks is laid out as N back-to-back
``header + payload`` segments in one buffer, filled by a single scattering ``preadv`` and handed
to the kernel in a single ``send``, which cuts it into N datagrams of ``4 + blksize`` bytes (the
last may be shorter, exactly like the last TFTP block). Two system calls per window instead of
2N. If the kernel refuses (segment larger than the route MTU, old kernel), the transfer falls back
to one send per block.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct

__all__ = ["BlockSender"]

UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)
_MAX_SEGS = 64  # UDP_MAX_SEGMENTS in older kernels
_MAX_GSO_BYTES = 65507
_HH = struct.Struct("!HH")
_DATA = 3


class BlockSender:
    def __init__(self, sock: socket.socket, data: object, blksize: int, size: int, window: int):
        self.sock, self.data, self.blksize, self.size = sock, data, blksize, size
        self.blocked = False
        self.buf = bytearray(4 + blksize)
        mv = memoryview(self.buf)
        self.full, self.payload = mv, mv[4:]
        self.fd: int | None = getattr(data, "fd", None)
        self.seg = 4 + blksize
        self.batch = min(window, _MAX_SEGS, _MAX_GSO_BYTES // self.seg)
        self.gso = False
        if self.fd is not None and self.batch >= 2:
            try:
                sock.setsockopt(socket.SOL_UDP, UDP_SEGMENT, self.seg)
                self.gso = True
            except OSError:
                pass
        if self.gso:
            self.gbuf = bytearray(self.seg * self.batch)
            g = memoryview(self.gbuf)
            self.gview = g
            self.slots = [g[i * self.seg + 4 : (i + 1) * self.seg] for i in range(self.batch)]

    def send_range(self, first: int, last: int) -> tuple[int, int]:
        """Send blocks ``first..last``; return (next block not sent, payload bytes sent).

        Stops early with ``blocked`` set when the socket buffer is full. Other socket errors
        (ICMP unreachable: the client went away) are raised.
        """
        self.blocked = False
        if self.gso:
            try:
                return self._send_gso(first, last)
            except OSError as e:
                if e.errno not in (errno.EINVAL, errno.EMSGSIZE, errno.EIO):
                    raise
                self._disable_gso()
        return self._send_each(first, last)

    def _disable_gso(self) -> None:
        self.gso = False
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 0)

    def _send_each(self, first: int, last: int) -> tuple[int, int]:
        sock, blksize, size, data = self.sock, self.blksize, self.size, self.data
        read_into = data.read_into  # type: ignore[attr-defined]
        sent = 0
        idx = first
        while idx <= last:
            offset = (idx - 1) * blksize
            length = size - offset
            if length >= blksize:
                n = read_into(self.payload, offset)
            else:
                n = read_into(self.payload[:length], offset) if length > 0 else 0
            _HH.pack_into(self.buf, 0, _DATA, idx & 0xFFFF)
            try:
                sock.send(self.full if n == blksize else self.full[: 4 + n])
            except BlockingIOError:
                self.blocked = True
                break
            sent += n
            idx += 1
        return idx, sent

    def _send_gso(self, first: int, last: int) -> tuple[int, int]:
        sock, blksize, seg, gbuf = self.sock, self.blksize, self.seg, self.gbuf
        sent = 0
        idx = first
        while idx <= last:
            k = min(self.batch, last - idx + 1)
            offset = (idx - 1) * blksize
            fd: int = self.fd  # type: ignore[assignment]
            n = os.preadv(fd, self.slots[:k], offset) if offset < self.size else 0
            k = min(k, n // blksize + 1)  # a short read ends the file: no blocks beyond it
            tail = n - (k - 1) * blksize
            for j in range(k):
                _HH.pack_into(gbuf, j * seg, _DATA, (idx + j) & 0xFFFF)
            total = (k - 1) * seg + 4 + tail
            try:
                sock.send(self.gview[:total])
            except BlockingIOError:
                self.blocked = True
                break
            sent += (k - 1) * blksize + tail
            idx += k
        return idx, sent
