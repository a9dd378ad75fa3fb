"""Fuzzing the codec and the request handler with >= 100,000 malformed packets.

Two sources: a bounded, seeded mutation loop over real requests (truncations, corrupted option
lengths, bad cookies, bad overloads, random bytes — every mutant checked to be malformed), and
hypothesis-generated packets (random headers and option lists, well-formed or not). Invariants:
no exception escapes :func:`handle`; a packet the codec rejects gets no reply and changes nothing.
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from regional_client.dhcp.packet import HEADER_LEN, MalformedPacket, MessageType, Opt, decode
from regional_client.dhcp.responder import DhcpState, handle

from .clientlib import request
from .test_responder import SID, make_cfg

NOW = 1_000_000.0
MUTANTS = 110_000


def seeds() -> list[bytes]:
    out = []
    for i, mt in enumerate(MessageType):
        for extra in (
            {},
            {Opt.CLIENT_ARCH: b"\x00\x07", Opt.VENDOR_CLASS: b"PXEClient:Arch:00007"},
            {Opt.USER_CLASS: b"iPXE", Opt.RELAY_AGENT: b"\x01\x02ab"},
        ):
            out.append(
                request(
                    f"52:54:00:00:00:{i:02x}",
                    mt,
                    requested="10.9.0.100",
                    server_id=SID,
                    giaddr="10.20.0.1" if extra else None,
                    options=extra,
                )
            )
    return out


def _option_offsets(data: bytes) -> list[int]:
    i, out = HEADER_LEN + 4, []
    while i < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        out.append(i)
        i += 2 + data[i + 1]
    return out


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One mutant meant to be malformed (the caller checks)."""
    b = bytearray(data)
    offs = _option_offsets(data)
    kind = rng.randrange(6)
    if kind == 0:  # truncate anywhere (inside the header or an option)
        return bytes(b[: rng.randrange(0, len(b))])
    if kind == 1:  # an option length past the end
        o = rng.choice(offs)
        b[o + 1] = rng.randrange(len(b) - o, 256) if len(b) - o < 256 else 255
        return bytes(b[: o + 2 + rng.randrange(0, 4)])
    if kind == 2:  # wrong length of a checked option
        o = rng.choice(offs)
        code = rng.choice([53, 50, 54, 57, 52, 93])
        b[o], b[o + 1] = code, rng.choice([0, 3, 5, 1]) if code != 53 else rng.choice([0, 2])
        return bytes(b)
    if kind == 3:  # bad cookie
        b[HEADER_LEN + rng.randrange(4)] ^= rng.randrange(1, 256)
        return bytes(b)
    if kind == 4:  # overload pointing at garbage in file/sname
        o = offs[-1]
        n = b[o + 1]
        b[o : o + 2 + n] = bytes((52, 1, rng.choice([1, 2, 3, 0, 7]))) + b"\x00" * (n - 1)
        b[44:236] = bytes(rng.randrange(1, 256) for _ in range(192))
        return bytes(b)
    # random bytes flipped, then truncated inside the options
    for _ in range(rng.randrange(1, 8)):
        b[rng.randrange(len(b))] = rng.randrange(256)
    return bytes(b[: rng.randrange(HEADER_LEN + 5, len(b))])


def test_mutation_loop_rejects_every_malformed_packet_without_reply() -> None:
    st = DhcpState(make_cfg(), SID, "http://x")
    rng = random.Random(20261128)
    pool = seeds()
    rejected = accepted = 0
    for _ in range(MUTANTS):
        m = mutate(rng, rng.choice(pool))
        try:
            decode(m)
        except MalformedPacket:
            rejected += 1
            out = handle(m, st, NOW)
            assert out.msg is None and out.data == b"" and not out.changes
            assert out.drop == "malformed"
        else:
            accepted += 1
            handle(m, st, NOW)  # well-formed by chance: must not raise
    assert rejected >= 100_000, (rejected, accepted)


_opt = hs.tuples(hs.integers(1, 254), hs.binary(max_size=24))


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    header=hs.binary(min_size=236, max_size=236),
    opts=hs.lists(_opt, max_size=12),
    tail=hs.binary(max_size=8),
    cut=hs.integers(0, 400),
    msg=hs.sampled_from([*MessageType, 0, 9]),
    ethernet=hs.booleans(),
)
def test_hypothesis_packets_never_raise(
    header: bytes, opts: list[tuple[int, bytes]], tail: bytes, cut: int, msg: int, ethernet: bool
) -> None:
    st = _STATE
    if ethernet:  # make it reach the responder: Ethernet client, local or relayed via 10.20.0.1
        gi = b"\x0a\x14\x00\x01" if header[3] & 1 else b"\x00" * 4
        header = header[:1] + b"\x01\x06" + header[3:24] + gi + header[28:]
    body = bytes((53, 1, msg)) + b"".join(bytes((c, len(v))) + v for c, v in opts) + tail
    data = bytes((1,)) + header[1:] + b"\x63\x82\x53\x63" + body
    data = data[: max(cut, 240)] if cut < len(data) else data
    try:
        decode(data)
        malformed = False
    except MalformedPacket:
        malformed = True
    out = handle(data, st, NOW)
    if malformed:
        assert out.msg is None and not out.changes
    if len(st.table.leases) > 5000:
        st.table.leases.clear()
        st.table.by_ip.clear()


_STATE = DhcpState(make_cfg(), SID, "http://x")
