"""Codec: decode/encode round trips and every bounds check raising MalformedPacket."""

from __future__ import annotations

import pytest

from regional_client.core.errors import ProtocolError
from regional_client.dhcp.packet import (
    BOOTP_MIN_LEN,
    HEADER_LEN,
    MAGIC,
    DhcpPacket,
    MalformedPacket,
    MessageType,
    Opt,
    decode,
    encode,
    encode_option,
    encode_raw,
)

from .clientlib import request

MAC = "52:54:00:12:34:56"


def test_round_trip_and_padding() -> None:
    data = request(MAC, MessageType.DISCOVER, xid=0xDEADBEEF, flags=0x8000)
    assert len(data) == BOOTP_MIN_LEN
    p = decode(data)
    assert p.xid == 0xDEADBEEF and p.broadcast and p.mac == MAC
    assert p.msg_type == MessageType.DISCOVER
    assert p.options[Opt.PARAM_REQUEST] == b"\x01\x03\x06\x0c\x0f\x42\x43"
    assert encode(p) == data


def _raw(options: bytes, sname: bytes = b"", file: bytes = b"") -> bytes:
    """A request with exactly ``options`` after the cookie (no END or padding added)."""
    p = DhcpPacket(op=1, sname=sname, file=file)
    return encode_raw(p, b"")[:HEADER_LEN] + MAGIC + options


def test_option_overload_reads_file_and_sname() -> None:
    file = encode_option(Opt.BOOTFILE, b"boot.efi") + b"\xff"
    sname = encode_option(Opt.HOSTNAME, b"node1") + b"\xff"
    data = _raw(b"\x35\x01\x01\x34\x01\x03\xff", sname=sname, file=file)
    p = decode(data)
    assert p.options[Opt.BOOTFILE] == b"boot.efi"
    assert p.options[Opt.HOSTNAME] == b"node1"
    assert p.file == b"" and p.sname == b""


def test_repeated_option_is_concatenated() -> None:
    data = _raw(b"\x35\x01\x01" + b"\x0c\x02ab" + b"\x0c\x02cd" + b"\xff")
    assert decode(data).options[Opt.HOSTNAME] == b"abcd"


def test_long_option_split_and_rejoined() -> None:
    value = bytes(range(256)) * 2
    blob = encode_option(Opt.VENDOR_SPECIFIC, value)
    assert blob[1] == 255 and len(blob) == len(value) + 6
    assert decode(_raw(b"\x35\x01\x01" + blob + b"\xff")).options[43] == value


def test_missing_end_at_exact_end_is_accepted() -> None:
    assert decode(_raw(b"\x35\x01\x01")).msg_type == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "short"),
        (b"\x01" * 239, "short"),
        (_raw(b"")[:-4] + b"\x00\x00\x00\x00", "cookie"),
        (_raw(b"\x35\x01\x01\x0c"), "trunc"),
        (_raw(b"\x35\x01\x01\x0c\x05ab"), "option_len"),
        (_raw(b"\x35\x00\xff"), "len"),
        (_raw(b"\x35\x01\x09\xff"), "msg_type"),
        (_raw(b"\x35\x01\x01\x32\x03abc\xff"), "len"),
        (_raw(b"\x35\x01\x01\x36\x00\xff"), "len"),
        (_raw(b"\x35\x01\x01\x37\x00\xff"), "len"),
        (_raw(b"\x35\x01\x01\x39\x02\x01\x00\xff"), "len"),
        (_raw(b"\x35\x01\x01\x5d\x03abc\xff"), "len"),
        (_raw(b"\x35\x01\x01\x34\x01\x04\xff"), "overload"),
        (_raw(b"\x35\x01\x01\x34\x01\x01\xff", file=b"\x00" * 120 + b"\x0c\x09abc"), "option_len"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedPacket) as ei:
        decode(data)
    assert ei.value.fields["reason"] == reason
    assert isinstance(ei.value, ProtocolError)


def test_bad_op_and_hlen() -> None:
    good = bytearray(request(MAC, MessageType.DISCOVER))
    good[0] = 3
    with pytest.raises(MalformedPacket):
        decode(bytes(good))
    good[0], good[2] = 1, 17
    with pytest.raises(MalformedPacket):
        decode(bytes(good))


def test_zero_length_unknown_option_kept() -> None:
    assert decode(_raw(b"\x35\x01\x01\x50\x00\xff")).options[80] == b""


def test_max_len_drops_trailing_options() -> None:
    p = DhcpPacket(options={})
    opts = encode_option(53, b"\x02") + encode_option(43, b"x" * 200)
    opts += encode_option(44, b"y" * 200)
    full = encode_raw(p, opts)
    cut = encode_raw(p, opts, max_len=548)
    assert len(full) > 548 >= len(cut)
    q = decode(cut)
    assert 43 in q.options and 44 not in q.options
