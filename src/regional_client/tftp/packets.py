"""TFTP wire format (RFC 1350) with option extension (RFC 2347/2348/2349/7440).

Pure codec: bytes in, frozen dataclasses out, and back. No sockets, no clock. DATA packets are
not built here on the hot path (the server writes the 4-byte header into a reused buffer, see
:func:`data_header`); everything else is small and rare enough to allocate freely.

Hand-written because no maintained library fits: tftpy and fbtftp lack windowsize, py3tftp has no
separable codec (STYLE.md §6 and NOTES.md "Libraries tried here").
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

from regional_client.core.errors import ProtocolError

__all__ = [
    "MAX_BLKSIZE",
    "MIN_BLKSIZE",
    "Ack",
    "Data",
    "ErrorCode",
    "ErrorPacket",
    "Oack",
    "Opcode",
    "Request",
    "data_header",
    "decode",
    "encode_ack",
    "encode_data",
    "encode_error",
    "encode_oack",
    "encode_request",
]

MIN_BLKSIZE = 8
MAX_BLKSIZE = 65464
"""RFC 2348 limits."""


class Opcode(IntEnum):
    RRQ = 1
    WRQ = 2
    DATA = 3
    ACK = 4
    ERROR = 5
    OACK = 6  # RFC 2347


class ErrorCode(IntEnum):
    NOT_DEFINED = 0
    FILE_NOT_FOUND = 1
    ACCESS_VIOLATION = 2
    DISK_FULL = 3
    ILLEGAL_OPERATION = 4
    UNKNOWN_TID = 5
    FILE_EXISTS = 6
    NO_SUCH_USER = 7
    OPTION_REFUSED = 8  # RFC 2347: option negotiation terminated


@dataclass(frozen=True, slots=True)
class Request:
    """RRQ or WRQ. ``filename`` is the raw bytes as sent (decoding is the resolver's job)."""

    opcode: Opcode
    filename: bytes
    mode: str
    options: dict[str, str] = field(default_factory=dict)
    """Lower-cased option names → values, in the order received (RFC 2347)."""


@dataclass(frozen=True, slots=True)
class Data:
    block: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Ack:
    block: int


@dataclass(frozen=True, slots=True)
class ErrorPacket:
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class Oack:
    options: dict[str, str]


Packet = Request | Data | Ack | ErrorPacket | Oack

_H = struct.Struct("!H")
_HH = struct.Struct("!HH")


def _split_strings(body: bytes) -> list[bytes]:
    if not body.endswith(b"\0"):
        raise ProtocolError("TFTP strings must be NUL-terminated", kind="malformed")
    return body[:-1].split(b"\0")


def _decode_request(opcode: Opcode, body: bytes) -> Request:
    parts = _split_strings(body)
    if len(parts) < 2 or len(parts) % 2:
        raise ProtocolError("request needs filename, mode and option pairs", kind="malformed")
    filename, raw_mode = parts[0], parts[1]
    try:
        mode = raw_mode.decode("ascii").lower()
        opts: dict[str, str] = {}
        for i in range(2, len(parts), 2):
            opts[parts[i].decode("ascii").lower()] = parts[i + 1].decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError("mode and options must be ASCII", kind="malformed") from None
    if mode not in ("octet", "netascii", "mail"):
        raise ProtocolError(f"unknown transfer mode {mode!r}", kind="malformed")
    return Request(opcode, filename, mode, opts)


def decode(datagram: bytes | bytearray | memoryview) -> Packet:
    """Parse one datagram; :class:`ProtocolError` (``kind="malformed"``) if it is not TFTP."""
    data = bytes(datagram)
    if len(data) < 2:
        raise ProtocolError("datagram too short for TFTP", kind="malformed")
    (op,) = _H.unpack_from(data)
    try:
        opcode = Opcode(op)
    except ValueError:
        raise ProtocolError(f"unknown TFTP opcode {op}", kind="malformed") from None
    if opcode in (Opcode.RRQ, Opcode.WRQ):
        return _decode_request(opcode, data[2:])
    if opcode == Opcode.OACK:
        parts = _split_strings(data[2:]) if len(data) > 2 else []
        if len(parts) % 2:
            raise ProtocolError("OACK options must come in pairs", kind="malformed")
        try:
            pairs = [p.decode("ascii") for p in parts]
        except UnicodeDecodeError:
            raise ProtocolError("OACK options must be ASCII", kind="malformed") from None
        return Oack({pairs[i].lower(): pairs[i + 1] for i in range(0, len(pairs), 2)})
    if len(data) < 4:
        raise ProtocolError("datagram too short", kind="malformed")
    (block,) = _H.unpack_from(data, 2)
    if opcode == Opcode.ACK:
        return Ack(block)
    if opcode == Opcode.DATA:
        return Data(block, data[4:])
    msg = data[4:].split(b"\0", 1)[0].decode("utf-8", "replace")
    return ErrorPacket(block, msg)


def encode_request(req: Request) -> bytes:
    out = [_H.pack(req.opcode), req.filename, b"\0", req.mode.encode(), b"\0"]
    for k, v in req.options.items():
        out += [k.encode(), b"\0", v.encode(), b"\0"]
    return b"".join(out)


def encode_ack(block: int) -> bytes:
    return _HH.pack(Opcode.ACK, block & 0xFFFF)


def encode_data(block: int, payload: bytes) -> bytes:
    return _HH.pack(Opcode.DATA, block & 0xFFFF) + payload


def data_header(buf: bytearray | memoryview, block: int) -> None:
    """Write a DATA header for ``block`` (wrapped to 16 bits) into the first 4 bytes of ``buf``."""
    _HH.pack_into(buf, 0, Opcode.DATA, block & 0xFFFF)


def encode_error(code: int, message: str) -> bytes:
    text = message.encode("ascii", "replace")[:400]
    return _HH.pack(Opcode.ERROR, code) + text + b"\0"


def encode_oack(options: dict[str, str]) -> bytes:
    out = [_H.pack(Opcode.OACK)]
    for k, v in options.items():
        out += [k.encode("ascii"), b"\0", v.encode("ascii"), b"\0"]
    return b"".join(out)
