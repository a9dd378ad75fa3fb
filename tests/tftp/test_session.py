"""The sans-IO transfer state machine, driven with explicit time (no sockets, no sleeping)."""

from __future__ import annotations

from regional_client.tftp import packets
from regional_client.tftp.session import Limits, Session, State, negotiate


def ack(n: int) -> bytes:
    return packets.encode_ack(n)


def make(size: int, opts: dict[str, str] | None = None, **limits: float) -> Session:
    lim = Limits(**limits)  # type: ignore[arg-type]
    return Session(size, negotiate(opts or {}, size, lim), lim, now=0.0)


def test_negotiation_clamps_and_ignores() -> None:
    lim = Limits(max_blksize=1468, max_windowsize=8)
    n = negotiate(
        {"blksize": "9000", "windowsize": "100", "tsize": "0", "timeout": "3", "x": "1"}, 77, lim
    )
    assert (n.blksize, n.windowsize, n.timeout) == (1468, 8, 3.0)
    assert n.oack == {"blksize": "1468", "windowsize": "8", "tsize": "77", "timeout": "3"}
    bad = negotiate({"blksize": "7", "timeout": "0", "windowsize": "0", "tsize": "zz"}, 1, lim)
    assert bad.oack == {} and bad.blksize == 512


def test_lockstep_without_options() -> None:
    s = make(1024)  # 512 + 512 + empty final block
    t = s.start(0.0)
    assert t.control is None and (t.first, t.last) == (1, 1)
    t = s.receive(ack(1), 0.1)
    assert t is not None and (t.first, t.last) == (2, 2)
    t = s.receive(ack(2), 0.2)
    assert t is not None and (t.first, t.last) == (3, 3)
    assert s.block_span(3) == (1024, 0)
    assert s.receive(ack(3), 0.3) is None
    assert s.state is State.DONE and s.next_deadline() is None


def test_oack_then_windows() -> None:
    s = make(10 * 100, {"blksize": "100", "windowsize": "4", "tsize": "0"})
    t = s.start(0.0)
    assert t.control == packets.encode_oack({"blksize": "100", "windowsize": "4", "tsize": "1000"})
    t = s.receive(ack(0), 0.01)
    assert t is not None and (t.first, t.last) == (1, 4)
    t = s.receive(ack(4), 0.02)
    assert t is not None and (t.first, t.last) == (5, 8)
    # block 6 lost: the client acks 5, the server resumes at 6
    t = s.receive(ack(5), 0.03)
    assert t is not None and (t.first, t.last) == (6, 9) and t.retransmit
    t = s.receive(ack(9), 0.04)
    assert t is not None and (t.first, t.last) == (10, 11)  # 11 = empty final block
    assert s.receive(ack(11), 0.05) is None and s.state is State.DONE


def test_duplicate_ack_does_not_double_the_transfer() -> None:
    """Sorcerer's Apprentice: every copy of an ACK must not trigger another DATA."""
    s = make(512 * 10)
    s.start(0.0)
    sent = 1
    for n in range(1, 11):
        t = s.receive(ack(n), n * 0.001)
        assert t is not None
        sent += t.last - t.first + 1
        assert s.receive(ack(n), n * 0.001 + 0.0001) is None  # duplicate right after
    assert sent == 11
    assert s.stats.duplicate_acks == 10


def test_late_duplicate_ack_retransmits_once() -> None:
    s = make(512 * 4)
    s.start(0.0)
    s.receive(ack(1), 0.0)  # block 2 sent at t=0
    t = s.receive(ack(1), 0.5)  # client re-acks on its own timer: resend 2
    assert t is not None and (t.first, t.last) == (2, 2) and t.retransmit
    assert s.receive(ack(1), 0.5001) is None


def test_timeout_retransmits_then_fails() -> None:
    s = make(2000, retransmit_timeout=1.0, retries=2)
    s.start(0.0)
    assert s.next_deadline() == 1.0
    assert s.on_timer(0.5) is None
    t = s.on_timer(1.0)
    assert t is not None and (t.first, t.last) == (1, 1) and t.retransmit
    assert s.on_timer(2.0) is not None
    t = s.on_timer(3.0)
    assert t is not None and t.control is not None and t.control.startswith(b"\x00\x05")
    assert s.state is State.FAILED and s.error_kind == "timeout"


def test_oack_retransmitted_on_timeout() -> None:
    s = make(100, {"tsize": "0"})
    first = s.start(0.0).control
    t = s.on_timer(1.0)
    assert t is not None and t.control == first


def test_negotiated_timeout_is_used_when_shorter() -> None:
    s = make(100, {"timeout": "4"}, retransmit_timeout=10.0)
    s.start(0.0)
    assert s.next_deadline() == 4.0
    s = make(100, {"timeout": "6"}, retransmit_timeout=1.0)
    assert s.nego.oack == {"timeout": "6"}
    s.start(0.0)
    assert s.next_deadline() == 1.0


def test_idle_timeout_even_with_retries_left() -> None:
    s = make(512 * 100, retransmit_timeout=1.0, retries=1000, idle_timeout=5.0)
    s.start(0.0)
    for now in (1.0, 2.0, 3.0, 4.0):
        s.receive(ack(0), now)  # a confused client keeps acking 0: no progress
        s.on_timer(now)
    assert s.on_timer(5.0) is not None and s.error_kind == "timeout"


def test_block_number_rollover() -> None:
    blocks = 70000
    s = make(8 * blocks + 3, {"blksize": "8", "windowsize": "1000"}, max_windowsize=1000)
    s.start(0.0)
    t = s.receive(ack(0), 0.0)
    while t is not None:
        t = s.receive(ack(t.last & 0xFFFF), 0.0)
    assert s.state is State.DONE and s.acked == blocks + 1


def test_stale_ack_after_rollover_is_ignored() -> None:
    s = make(8 * 70000, {"blksize": "8", "windowsize": "65535"}, max_windowsize=65535)
    s.start(0.0)
    s.receive(ack(0), 0.0)
    t = s.receive(ack(65535), 0.0)  # acked = 65535, sends up to 70001
    assert t is not None and s.acked == 65535
    s.receive(ack(65534), 0.01)  # stale: older than acked
    assert s.acked == 65535
    s.receive(ack(2), 0.02)  # wire 2 == absolute 65538
    assert s.acked == 65538


def test_client_error_and_illegal_packet() -> None:
    s = make(100)
    s.start(0.0)
    assert s.receive(packets.encode_error(0, "cancelled"), 0.1) is None
    assert s.state is State.FAILED and s.error_kind == "client_error"
    s2 = make(100)
    s2.start(0.0)
    t = s2.receive(packets.encode_data(1, b"x"), 0.1)
    assert t is not None and t.control is not None and s2.error_kind == "illegal_operation"
    s3 = make(100)
    s3.start(0.0)
    assert s3.receive(b"\x00", 0.1) is None and not s3.finished
