"""Asyncio TFTP server: the thin I/O shell around :mod:`regional_client.tftp.session`.

One listening UDP socket receives requests (``IP_PKTINFO`` tells which local address a request
was sent to, so replies leave from that address even when listening on ``0.0.0.0``). Every
accepted RRQ gets its own ephemeral socket, bound to that address and ``connect()``-ed to the
client: the kernel then filters foreign TIDs and reports ICMP unreachable as an error.

Hot path, per DATA block: ``os.preadv`` into a buffer owned by the transfer, ``struct.pack_into``
of the 4-byte header, ``socket.send`` of a pre-made memoryview. Sockets are driven by
``loop.add_reader``/``add_writer`` directly (no transport objects, no per-datagram tuples), and
each transfer has one lazily re-armed timer instead of a new timer per ACK.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from regional_client.config.tftp import TftpConfig
from regional_client.core.errors import ForbiddenError, NotFound, ProtocolError
from regional_client.core.limits import LimitHits
from regional_client.core.logs import StructLogger, get_logger
from regional_client.core.metrics import Metrics
from regional_client.tftp import packets
from regional_client.tftp.packets import ErrorCode, Opcode, Request
from regional_client.tftp.sender import BlockSender
from regional_client.tftp.session import Limits, Session, Transmit, negotiate
from regional_client.tftp.source import FileSource, NetasciiData, ResponseData, RootSource
from regional_client.tftp.stats import TftpMetrics

__all__ = ["TftpServer", "TransferInfo", "parse_listen_addr"]

_IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
_PKTINFO = struct.Struct("=i4s4s")
_SOCK_BUF = 4 * 1024 * 1024
_MAX_REQUEST = 2048


def parse_listen_addr(text: str) -> tuple[str, int]:
    """``":69"`` → ``("0.0.0.0", 69)``; ``"127.0.0.1:6969"``; ``"[::1]:69"``."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    ipaddress.ip_address(host)
    return host, int(port)


@dataclass(frozen=True, slots=True)
class TransferInfo:
    peer: tuple[str, int]
    file: str
    size: int
    blksize: int
    windowsize: int
    acked_bytes: int
    started: float


class _Transfer:
    """Socket, buffer, session and data of one read transfer."""

    def __init__(
        self,
        server: TftpServer,
        sock: socket.socket,
        peer: tuple[str, int],
        data: ResponseData,
        session: Session,
    ) -> None:
        self.server, self.sock, self.peer, self.data, self.session = (
            server,
            sock,
            peer,
            data,
            session,
        )
        self.loop = server.loop
        self.fd = sock.fileno()
        self.sender = BlockSender(sock, data, session.blksize, session.size, session.windowsize)
        self.rbuf = bytearray(_MAX_REQUEST)
        self.rview = memoryview(self.rbuf)
        self.pending: tuple[int, int] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self.started_wall = time.time()
        self.closed = False

    # ---- driving ------------------------------------------------------------------------

    def begin(self) -> None:
        self.loop.add_reader(self.fd, self.on_readable)
        self.apply(self.session.start(self.loop.time()))

    def on_readable(self) -> None:
        now = self.loop.time()
        for _ in range(64):
            try:
                n = self.sock.recv_into(self.rbuf)
            except BlockingIOError:
                break
            except OSError as e:  # ICMP unreachable: the client is gone
                self.session.abort("client_gone", str(e))
                break
            t = self.session.receive(self.rview[:n], now)
            if t is not None:
                self.apply(t)
            if self.session.finished:
                break
        if self.session.finished:
            self.finish()

    def on_timer(self) -> None:
        self.timer = None
        if self.closed:
            return
        now = self.loop.time()
        deadline = self.session.next_deadline()
        if deadline is not None and deadline <= now:
            t = self.session.on_timer(now)
            if t is not None:
                self.apply(t)
        if self.session.finished:
            self.finish()
        else:
            self.arm()

    def arm(self) -> None:
        deadline = self.session.next_deadline()
        if deadline is None:
            return
        if self.timer is not None:
            if self.timer_at <= deadline:
                return  # fires early, re-arms itself then
            self.timer.cancel()
        self.timer_at = deadline
        self.timer = self.loop.call_at(deadline, self.on_timer)

    def apply(self, t: Transmit) -> None:
        if t.control is not None:
            with contextlib.suppress(OSError):
                self.sock.send(t.control)
        if t.last >= t.first:
            self.pending = (t.first, t.last)
            self.flush()
        if self.timer is None:
            self.arm()

    def flush(self) -> None:
        """Send the pending block range until done or the socket buffer is full."""
        assert self.pending is not None
        first, last = self.pending
        try:
            nxt, nbytes = self.sender.send_range(first, last)
        except OSError as e:  # ICMP unreachable and friends: the client is gone
            self.session.abort("client_gone", str(e))
            self.loop.call_soon(self.finish)
            return
        self.session.count_sent(nxt - first, nbytes)
        if self.sender.blocked:
            self.pending = (nxt, last)
            self.loop.add_writer(self.fd, self.on_writable)
        else:
            self.pending = None

    def on_writable(self) -> None:
        self.loop.remove_writer(self.fd)
        if self.pending is not None and not self.closed:
            self.flush()

    # ---- ending -------------------------------------------------------------------------

    def finish(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        self.loop.remove_reader(self.fd)
        self.loop.remove_writer(self.fd)
        self.sock.close()
        self.data.close()
        self.server._transfer_done(self)

    def abort(self, message: str) -> None:
        with contextlib.suppress(OSError):
            self.sock.send(packets.encode_error(ErrorCode.NOT_DEFINED, message))
        self.session.abort("shutdown", message)
        self.finish()

    def info(self) -> TransferInfo:
        s = self.session
        return TransferInfo(
            self.peer,
            self.data.name,
            s.size,
            s.blksize,
            s.windowsize,
            min(s.size, s.acked * s.blksize),
            self.started_wall,
        )


class TftpServer:
    """Read-only TFTP service. ``async start()``, ``async stop()``; ``address`` once started."""

    def __init__(
        self,
        config: TftpConfig,
        metrics: Metrics | None = None,
        source: FileSource | None = None,
        log: StructLogger | None = None,
    ) -> None:
        self.config = config
        self.source: FileSource = source or RootSource(config.root_dir)
        self.metrics = TftpMetrics(metrics or Metrics("-"))
        self.log = log or get_logger("tftp")
        self.hits = LimitHits(metrics or Metrics("-"), self.log)
        self.per_source: dict[str, int] = {}
        self.limits = Limits(
            max_blksize=config.block_size,
            max_windowsize=config.max_window_size,
            retransmit_timeout=config.retransmit_timeout,
            retries=config.retries,
            idle_timeout=config.timeout,
        )
        self.transfers: set[_Transfer] = set()
        self.on_transfer_done: Callable[[_Transfer], None] | None = None
        self.on_activity: Callable[[str], None] | None = None
        """Called with the client's IP on every read request and finished transfer (the
        workflow's boot-activity record)."""
        self._sock: socket.socket | None = None
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.address: tuple[str, int] | None = None

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        host, port = parse_listen_addr(self.config.listen_addr)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, _IP_PKTINFO, 1)
        sock.bind((host, port))
        self._sock = sock
        self.address = sock.getsockname()[:2]
        self.loop.add_reader(sock.fileno(), self._on_request)
        self.log.info(
            "TFTP server listening",
            action="tftp_start",
            listen=f"{self.address[0]}:{self.address[1]}",
            root=str(self.config.root_dir),
        )

    async def stop(self) -> None:
        if self._sock is not None:
            self.loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        for t in list(self.transfers):
            t.abort("server shutting down")
        self.log.info("TFTP server stopped", action="tftp_stop")

    @property
    def running(self) -> bool:
        return self._sock is not None

    def list_transfers(self) -> list[TransferInfo]:
        return [t.info() for t in self.transfers]

    # ---- requests -----------------------------------------------------------------------

    def _on_request(self) -> None:
        assert self._sock is not None
        for _ in range(32):
            try:
                msg, anc, _flags, peer = self._sock.recvmsg(_MAX_REQUEST, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            local = self._local_addr(anc)
            try:
                self._handle(msg, peer[:2], local)
            except Exception:  # never let one bad request stop the listener
                self.log.exception("TFTP request handling failed", action="tftp_error")

    def _local_addr(self, anc: list[tuple[int, int, bytes]]) -> str:
        for level, kind, data in anc:
            if level == socket.IPPROTO_IP and kind == _IP_PKTINFO and len(data) >= _PKTINFO.size:
                _ifindex, spec_dst, _addr = _PKTINFO.unpack_from(data)
                return socket.inet_ntoa(spec_dst)
        assert self.address is not None
        return self.address[0]

    def _reply_error(self, peer: tuple[str, int], code: int, message: str, kind: str) -> None:
        self.metrics.error(kind)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.sendto(packets.encode_error(code, message), peer)

    def _handle(self, msg: bytes, peer: tuple[str, int], local: str) -> None:
        try:
            req = packets.decode(msg)
        except ProtocolError:
            self.metrics.error("malformed")
            return
        if not isinstance(req, Request):
            self._reply_error(peer, ErrorCode.ILLEGAL_OPERATION, "expected a request", "illegal")
            return
        if self.on_activity is not None:
            self.on_activity(peer[0])
        if req.opcode == Opcode.WRQ:
            self.log.info("TFTP write refused", action="tftp_wrq_refused", ip=peer[0])
            self._reply_error(peer, ErrorCode.ACCESS_VIOLATION, "server is read-only", "write")
            return
        if self.per_source.get(peer[0], 0) >= self.config.max_transfers_per_source:
            self.hits.hit("tftp_transfers_per_source", peer[0])
            self._reply_error(peer, ErrorCode.NOT_DEFINED, "too many transfers", "per_source")
            return
        if len(self.transfers) >= self.config.max_clients and not self._reclaim_half_open():
            self.hits.hit("tftp_transfers", peer[0])
            self._reply_error(peer, ErrorCode.NOT_DEFINED, "server busy, try again", "busy")
            return
        data = self._open(req, peer)
        if data is not None:
            self._begin(req, data, peer, local)

    def _reclaim_half_open(self) -> bool:
        """Server full: end the oldest transfer whose client never acknowledged anything (a
        request flood never ACKs; a real client ACKs its first block within milliseconds)."""
        half_open = [t for t in self.transfers if not t.session.answered]
        if not half_open:
            return False
        oldest = min(half_open, key=lambda t: t.session.started)
        self.hits.hit("tftp_half_open_reclaimed", oldest.peer[0])
        oldest.abort("server busy: transfer never acknowledged")
        return True

    def _open(self, req: Request, peer: tuple[str, int]) -> ResponseData | None:
        try:
            data = self.source.open(req.filename, peer)
        except NotFound:
            self.metrics.request("<not_found>")
            self._reply_error(peer, ErrorCode.FILE_NOT_FOUND, "file not found", "not_found")
            return None
        except ForbiddenError as e:
            self.metrics.request("<denied>")
            self.log.warning(
                "TFTP request refused",
                action="tftp_denied",
                ip=peer[0],
                reason=e.fields.get("reason", ""),
                file=req.filename[:200].decode("utf-8", "replace"),
            )
            self._reply_error(peer, ErrorCode.ACCESS_VIOLATION, "access violation", "denied")
            return None
        self.metrics.request(data.name)
        if req.mode == "netascii":
            try:
                return NetasciiData(data, self.config.netascii_max)
            except ForbiddenError:
                data.close()
                self.hits.hit("tftp_netascii_size", peer[0])
                self._reply_error(peer, ErrorCode.ACCESS_VIOLATION, "use octet mode", "netascii")
                return None
        return data

    def _begin(self, req: Request, data: ResponseData, peer: tuple[str, int], local: str) -> None:
        family = socket.AF_INET6 if ":" in local else socket.AF_INET
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCK_BUF)
            sock.bind((local, 0))
            sock.connect(peer)
        except OSError as e:
            data.close()
            self.log.error("cannot open transfer socket", action="tftp_error", error=str(e))
            self._reply_error(peer, ErrorCode.NOT_DEFINED, "server error", "socket")
            return
        now = self.loop.time()
        session = Session(
            data.size, negotiate(req.options, data.size, self.limits), self.limits, now
        )
        transfer = _Transfer(self, sock, peer, data, session)
        self.transfers.add(transfer)
        self.per_source[peer[0]] = self.per_source.get(peer[0], 0) + 1
        self.metrics.active.labels(idc=self.metrics.idc).set(len(self.transfers))
        transfer.begin()
        if session.finished:
            transfer.finish()

    def _transfer_done(self, t: _Transfer) -> None:
        if t in self.transfers:
            left = self.per_source.get(t.peer[0], 1) - 1
            if left > 0:
                self.per_source[t.peer[0]] = left
            else:
                self.per_source.pop(t.peer[0], None)
        self.transfers.discard(t)
        s = t.session
        ok = s.error_kind is None
        seconds = self.loop.time() - s.started
        self.metrics.active.labels(idc=self.metrics.idc).set(len(self.transfers))
        self.metrics.finished(ok, seconds, s.stats.bytes_sent, s.stats.retransmits)
        if not ok:
            self.metrics.error(s.error_kind or "failed")
        fields = {
            "ip": t.peer[0],
            "file": t.data.name,
            "size": s.size,
            "blksize": s.blksize,
            "windowsize": s.windowsize,
            "seconds": round(seconds, 3),
            "retransmits": s.stats.retransmits,
        }
        if ok:
            self.log.info("TFTP transfer complete", action="tftp_sent", **fields)
        else:
            self.log.warning(
                "TFTP transfer failed",
                action="tftp_failed",
                kind=s.error_kind,
                error=s.error_message,
                **fields,
            )
        if self.on_activity is not None:
            self.on_activity(t.peer[0])
        if self.on_transfer_done is not None:
            self.on_transfer_done(t)
