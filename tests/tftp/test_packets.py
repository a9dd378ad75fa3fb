"""Byte-level codec tests."""

from __future__ import annotations

import pytest

from regional_client.core.errors import ProtocolError
from regional_client.tftp import packets
from regional_client.tftp.packets import Ack, Data, ErrorPacket, Oack, Opcode, Request


def test_rrq_with_options_roundtrip() -> None:
    req = Request(Opcode.RRQ, b"pxelinux.0", "octet", {"blksize": "1468", "tsize": "0"})
    raw = packets.encode_request(req)
    assert raw == b"\x00\x01pxelinux.0\x00octet\x00blksize\x001468\x00tsize\x000\x00"
    assert packets.decode(raw) == req


def test_option_names_and_mode_are_case_insensitive() -> None:
    got = packets.decode(b"\x00\x01f\x00OCTET\x00BlkSize\x00512\x00")
    assert isinstance(got, Request)
    assert got.mode == "octet" and got.options == {"blksize": "512"}


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00",
        b"\x00\x09abc",
        b"\x00\x01file\x00octet",  # no final NUL
        b"\x00\x01file\x00",  # no mode
        b"\x00\x01file\x00octet\x00blksize\x00",  # option without value
        b"\x00\x01file\x00bogus\x00",
        b"\x00\x01file\x00oct\xffet\x00",
        b"\x00\x04\x00",
    ],
)
def test_malformed_is_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        packets.decode(raw)


def test_data_ack_error_oack() -> None:
    assert packets.decode(packets.encode_data(70000, b"xy")) == Data(70000 & 0xFFFF, b"xy")
    assert packets.decode(packets.encode_ack(65536)) == Ack(0)
    assert packets.decode(packets.encode_error(1, "file not found")) == ErrorPacket(
        1, "file not found"
    )
    assert packets.decode(packets.encode_oack({"blksize": "1468"})) == Oack({"blksize": "1468"})
    buf = bytearray(8)
    packets.data_header(buf, 65537)
    assert bytes(buf[:4]) == b"\x00\x03\x00\x01"
