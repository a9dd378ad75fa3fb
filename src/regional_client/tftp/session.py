"""One read transfer as a sans-IO state machine (RFC 1350, 2347, 2348, 2349, 7440).

The session never touches a socket, a file or the clock. The shell feeds it datagrams and the
current time and asks what to transmit; it answers with a :class:`Transmit`: a control packet
(OACK or ERROR) and/or a range of block indices to send as DATA. Block indices are absolute
(1, 2, ... beyond 65535); only the wire number wraps to 16 bits, so files larger than
65535 blocks roll over to block 0 the way tftp-hpa, curl and atftp expect.

Retransmission and duplicates:

- An ACK that advances (acknowledges a block beyond the highest acknowledged so far) sends the
  next window: ``windowsize`` blocks from the one after it (RFC 7440; lock-step when 1).
- A duplicate ACK (the highest acknowledged again) retransmits the outstanding window only if
  nothing was sent for ``dup_ack_gap`` seconds. Copies of an ACK produced by one delayed or
  duplicated DATA packet arrive within that gap and are ignored, so one duplicate can never
  double the rest of the transfer (the Sorcerer's Apprentice bug, RFC 1123 §4.2.3.1). Clients
  that re-ACK on their own timer still get a fast retransmission.
- When the retransmission timeout (the configured one, or the client's ``timeout`` option if
  shorter) passes without an advancing ACK, the outstanding window (or the OACK) is sent
  again, up to ``retries`` times; after that, or when no progress was made for ``idle_timeout``,
  the transfer fails with an ERROR packet.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import Enum

from regional_client.tftp import packets
from regional_client.tftp.packets import MAX_BLKSIZE, MIN_BLKSIZE, ErrorCode, Opcode

__all__ = ["Limits", "Negotiation", "Session", "SessionStats", "State", "Transmit", "negotiate"]

_HH = struct.Struct("!HH")
_ACK = int(Opcode.ACK)
_ERROR = int(Opcode.ERROR)


@dataclass(frozen=True, slots=True)
class Limits:
    """Server-side bounds on what a client may negotiate, and retransmission policy."""

    max_blksize: int = MAX_BLKSIZE
    max_windowsize: int = 64
    retransmit_timeout: float = 1.0
    """Seconds before an unacknowledged window is sent again (when the client names none)."""
    retries: int = 5
    idle_timeout: float = 30.0
    """Fail a transfer that made no progress for this long."""
    dup_ack_gap: float = 0.05


@dataclass(frozen=True, slots=True)
class Negotiation:
    blksize: int = 512
    windowsize: int = 1
    timeout: float | None = None
    oack: dict[str, str] = field(default_factory=dict)
    """Options to acknowledge; empty means no OACK (plain RFC 1350 transfer)."""


def _int(value: str) -> int | None:
    try:
        return int(value.strip())
    except ValueError:
        return None


def negotiate(options: dict[str, str], size: int | None, limits: Limits) -> Negotiation:
    """Accept, clamp or ignore each option (RFC 2347: unknown or invalid options are dropped)."""
    blksize, windowsize, timeout = 512, 1, None
    oack: dict[str, str] = {}
    for name, value in options.items():
        n = _int(value)
        if n is None:
            continue
        if name == "blksize" and n >= MIN_BLKSIZE:
            blksize = min(n, limits.max_blksize, MAX_BLKSIZE)
            oack[name] = str(blksize)
        elif name == "windowsize" and 1 <= n <= 65535:
            windowsize = min(n, limits.max_windowsize)
            oack[name] = str(windowsize)
        elif name == "timeout" and 1 <= n <= 255:
            timeout = float(n)
            oack[name] = str(n)
        elif name == "tsize" and size is not None:
            oack[name] = str(size)
    return Negotiation(blksize, windowsize, timeout, oack)


class State(Enum):
    OACK_SENT = "oack_sent"
    SENDING = "sending"
    DONE = "done"
    FAILED = "failed"


@dataclass(slots=True)
class Transmit:
    """What to put on the wire now: ``control`` first, then DATA blocks ``first..last``."""

    control: bytes | None = None
    first: int = 1
    last: int = 0
    retransmit: bool = False


@dataclass(slots=True)
class SessionStats:
    blocks_sent: int = 0
    bytes_sent: int = 0
    retransmits: int = 0
    duplicate_acks: int = 0
    timeouts: int = 0


class Session:
    """A read transfer of ``size`` bytes to one client."""

    def __init__(self, size: int, nego: Negotiation, limits: Limits, now: float) -> None:
        self.size = size
        self.blksize = nego.blksize
        self.windowsize = nego.windowsize
        self.nego = nego
        self.limits = limits
        # The client's RFC 2349 timeout is acknowledged but never makes us wait longer than our own
        # policy: resending early is harmless (the client drops duplicates) and keeps recovery
        # fast with clients that ask for long timeouts (curl asks for 6 s).
        self.rto = min(nego.timeout or limits.retransmit_timeout, limits.retransmit_timeout)
        self.total_blocks = size // self.blksize + 1
        self.state = State.OACK_SENT if nego.oack else State.SENDING
        self.acked = 0
        self.answered = False
        """The client has acknowledged something (until then the transfer is "half-open":
        the server may reclaim its slot for a new request when full)."""
        self.sent_hi = 0
        self.last_tx = now
        self.last_progress = now
        self.started = now
        self.retries_left = limits.retries
        self.stats = SessionStats()
        self.error_kind: str | None = None
        """Why the transfer failed: ``timeout``, ``client_error``, ``illegal_operation``."""
        self.error_message = ""

    # ---- inputs -------------------------------------------------------------------------

    def start(self, now: float) -> Transmit:
        self.last_tx = now
        if self.state is State.OACK_SENT:
            return Transmit(control=packets.encode_oack(self.nego.oack))
        return self._window(1, now, retransmit=False)

    def receive(self, data: bytes | bytearray | memoryview, now: float) -> Transmit | None:
        if self.state in (State.DONE, State.FAILED):
            return None
        if len(data) >= 4:
            op, block = _HH.unpack_from(data)
            if op == _ACK:
                return self._on_ack(block, now)
            if op == _ERROR:
                msg = bytes(data[4:]).split(b"\0", 1)[0].decode("utf-8", "replace")
                self._fail("client_error", f"client sent error {block}: {msg}")
                return None
        elif len(data) >= 2 and data[1] == _ERROR and data[0] == 0:
            self._fail("client_error", "client sent an error")
            return None
        if len(data) < 2:
            return None  # runt: ignore, the timer recovers
        self._fail("illegal_operation", "unexpected packet during a read transfer")
        return Transmit(control=packets.encode_error(ErrorCode.ILLEGAL_OPERATION, "unexpected"))

    def on_timer(self, now: float) -> Transmit | None:
        """Call when ``now >= next_deadline()``; retransmits or fails the transfer."""
        if self.state in (State.DONE, State.FAILED):
            return None
        if now - self.last_progress >= self.limits.idle_timeout:
            return self._timeout("no progress within the transfer timeout")
        if now - self.last_tx < self.rto:
            return None
        if self.retries_left <= 0:
            return self._timeout("client stopped acknowledging")
        self.retries_left -= 1
        self.stats.timeouts += 1
        return self._resend(now)

    # ---- queries ------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.state in (State.DONE, State.FAILED)

    def next_deadline(self) -> float | None:
        if self.finished:
            return None
        return min(self.last_tx + self.rto, self.last_progress + self.limits.idle_timeout)

    def block_span(self, index: int) -> tuple[int, int]:
        """File offset and length of absolute block ``index``."""
        offset = (index - 1) * self.blksize
        return offset, max(0, min(self.blksize, self.size - offset))

    # ---- internals ----------------------------------------------------------------------

    def _on_ack(self, block: int, now: float) -> Transmit | None:
        acked = self.sent_hi - ((self.sent_hi - block) & 0xFFFF)
        if acked > self.acked or (self.state is State.OACK_SENT and acked == 0):
            self.acked = acked
            self.answered = True
            self.state = State.SENDING
            self.retries_left = self.limits.retries
            self.last_progress = now
            if acked >= self.total_blocks:
                self.state = State.DONE
                return None
            return self._window(acked + 1, now, retransmit=acked < self.sent_hi)
        self.stats.duplicate_acks += 1
        if (
            acked == self.acked
            and self.sent_hi > acked
            and now - self.last_tx >= self.limits.dup_ack_gap
        ):
            return self._resend(now)
        return None

    def _window(self, first: int, now: float, retransmit: bool) -> Transmit:
        last = min(first + self.windowsize - 1, self.total_blocks)
        if retransmit:
            self.stats.retransmits += max(0, min(last, self.sent_hi) - first + 1)
        self.sent_hi = max(self.sent_hi, last)
        self.last_tx = now
        return Transmit(first=first, last=last, retransmit=retransmit)

    def _resend(self, now: float) -> Transmit:
        if self.state is State.OACK_SENT:
            self.last_tx = now
            self.stats.retransmits += 1
            return Transmit(control=packets.encode_oack(self.nego.oack), retransmit=True)
        return self._window(self.acked + 1, now, retransmit=True)

    def _timeout(self, message: str) -> Transmit:
        self._fail("timeout", message)
        return Transmit(control=packets.encode_error(ErrorCode.NOT_DEFINED, "transfer timed out"))

    def abort(self, kind: str, message: str) -> None:
        """The shell ends the transfer (the client is gone, the server shuts down)."""
        self._fail(kind, message)

    def _fail(self, kind: str, message: str) -> None:
        self.state = State.FAILED
        self.error_kind = kind
        self.error_message = message

    def count_sent(self, blocks: int, nbytes: int) -> None:
        """The shell reports what it actually put on the wire."""
        self.stats.blocks_sent += blocks
        self.stats.bytes_sent += nbytes
