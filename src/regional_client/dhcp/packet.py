"""BOOTP/DHCPv4 packet codec, sans-IO (RFC 951, RFC 2131, RFC 2132, RFC 3396).

:func:`decode` turns bytes into a :class:`DhcpPacket` and raises :class:`MalformedPacket` (one
error type) for anything out of bounds: short packets, a bad magic cookie, an option whose length
runs past the end of its field, an invalid overload (option 52) value, and wrong lengths for the
options the server relies on (53, 50, 54, 57, 55, 61, 93, 12). :func:`encode` builds a reply
padded to the 300-byte BOOTP minimum that some PXE ROMs still insist on.

Why hand-written: dpkt's DHCP class neither handles option overload nor long (RFC 3396,
concatenated) options, is lax about bounds, and scapy costs ~58 µs per packet; this codec is a
few ``struct`` calls on the hot path and lets the responder pass pre-encoded option blobs.
IP addresses are kept as 4-byte ``bytes`` (wire form); helpers convert to ``int``/``str``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

from regional_client.core.errors import ProtocolError

__all__ = [
    "BOOTP_MIN_LEN",
    "MAGIC",
    "DhcpPacket",
    "MalformedPacket",
    "MessageType",
    "Opt",
    "decode",
    "encode",
    "encode_option",
    "ip_bytes",
    "ip_str",
    "peek_mac",
    "peek_type",
]

MAGIC = b"\x63\x82\x53\x63"
HEADER = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")
HEADER_LEN = HEADER.size  # 236
BOOTP_MIN_LEN = 300
BROADCAST_FLAG = 0x8000
ZERO_IP = b"\x00\x00\x00\x00"
BOOTREQUEST, BOOTREPLY = 1, 2


class MalformedPacket(ProtocolError):
    """The datagram is not a well-formed BOOTP/DHCP message; ``reason`` says why."""

    code = "dhcp_malformed"


class MessageType(IntEnum):
    DISCOVER = 1
    OFFER = 2
    REQUEST = 3
    DECLINE = 4
    ACK = 5
    NAK = 6
    RELEASE = 7
    INFORM = 8


class Opt(IntEnum):
    PAD = 0
    SUBNET_MASK = 1
    ROUTER = 3
    DNS = 6
    HOSTNAME = 12
    DOMAIN_NAME = 15
    BROADCAST = 28
    VENDOR_SPECIFIC = 43
    REQUESTED_IP = 50
    LEASE_TIME = 51
    OVERLOAD = 52
    MESSAGE_TYPE = 53
    SERVER_ID = 54
    PARAM_REQUEST = 55
    MESSAGE = 56
    MAX_MESSAGE_SIZE = 57
    RENEWAL_TIME = 58
    REBINDING_TIME = 59
    VENDOR_CLASS = 60
    CLIENT_ID = 61
    TFTP_SERVER = 66
    BOOTFILE = 67
    USER_CLASS = 77
    RELAY_AGENT = 82
    CLIENT_ARCH = 93
    CLIENT_NDI = 94
    UUID = 97
    IPXE_ENCAP = 175
    END = 255


# exact lengths (or a minimum, with ``-n``) the server relies on
_EXACT: dict[int, int] = {
    Opt.MESSAGE_TYPE: 1,
    Opt.REQUESTED_IP: 4,
    Opt.SERVER_ID: 4,
    Opt.MAX_MESSAGE_SIZE: 2,
    Opt.OVERLOAD: 1,
}
_MIN: dict[int, int] = {Opt.PARAM_REQUEST: 1, Opt.CLIENT_ID: 2, Opt.CLIENT_ARCH: 2, Opt.HOSTNAME: 1}


@dataclass(slots=True)
class DhcpPacket:
    """One BOOTP/DHCP message. Addresses are 4-byte wire ``bytes``; options map code → value.

    A repeated option is concatenated (RFC 3396). ``options`` keeps insertion order, which
    :func:`encode` preserves.
    """

    op: int = BOOTREPLY
    htype: int = 1
    hlen: int = 6
    hops: int = 0
    xid: int = 0
    secs: int = 0
    flags: int = 0
    ciaddr: bytes = ZERO_IP
    yiaddr: bytes = ZERO_IP
    siaddr: bytes = ZERO_IP
    giaddr: bytes = ZERO_IP
    chaddr: bytes = b"\x00" * 16
    sname: bytes = b""
    file: bytes = b""
    options: dict[int, bytes] = field(default_factory=dict)

    @property
    def msg_type(self) -> int | None:
        v = self.options.get(Opt.MESSAGE_TYPE)
        return v[0] if v else None

    @property
    def mac(self) -> str:
        """Client hardware address, lower-case ``aa:bb:...`` (``hlen`` bytes of ``chaddr``)."""
        return self.chaddr[: self.hlen].hex(":")

    @property
    def broadcast(self) -> bool:
        return bool(self.flags & BROADCAST_FLAG)


def _parse_options(buf: bytes, start: int, end: int, out: dict[int, bytes], where: str) -> bool:
    """Parse options in ``buf[start:end]`` into ``out``. True when an END option was seen."""
    i = start
    while i < end:
        code = buf[i]
        if code == 0:
            i += 1
            continue
        if code == 255:
            return True
        if i + 1 >= end:
            raise MalformedPacket(f"option {code} in {where} has no length byte", reason="trunc")
        n = buf[i + 1]
        j = i + 2 + n
        if j > end:
            raise MalformedPacket(
                f"option {code} in {where} runs past the end ({n} bytes)", reason="option_len"
            )
        val = buf[i + 2 : j]
        prev = out.get(code)
        out[code] = val if prev is None else prev + val
        i = j
    return False


def _check_lengths(opts: dict[int, bytes]) -> None:
    for code, v in opts.items():
        n = _EXACT.get(code)
        if n is not None:
            if len(v) != n:
                msg = f"option {code} must be {n} bytes, got {len(v)}"
                raise MalformedPacket(msg, reason="len")
            continue
        n = _MIN.get(code)
        if n is not None and len(v) < n:
            raise MalformedPacket(f"option {code} too short ({len(v)} bytes)", reason="len")
    arch = opts.get(Opt.CLIENT_ARCH)
    if arch is not None and len(arch) % 2:
        raise MalformedPacket("option 93 length must be even", reason="len")
    mt = opts.get(Opt.MESSAGE_TYPE)
    if mt is not None and not 1 <= mt[0] <= 8:
        raise MalformedPacket(f"unknown DHCP message type {mt[0]}", reason="msg_type")
    mms = opts.get(Opt.MAX_MESSAGE_SIZE)
    if mms is not None and (mms[0] << 8 | mms[1]) < 576:
        raise MalformedPacket("option 57 below the legal minimum 576", reason="len")


def decode(data: bytes) -> DhcpPacket:
    """Parse one datagram. Raises :class:`MalformedPacket` for anything out of bounds."""
    if len(data) < HEADER_LEN + 4:
        raise MalformedPacket(f"packet too short ({len(data)} bytes)", reason="short")
    op, htype, hlen, hops, xid, secs, flags, ci, yi, si, gi, ch, sname, file = HEADER.unpack_from(
        data
    )
    if op not in (BOOTREQUEST, BOOTREPLY):
        raise MalformedPacket(f"bad op {op}", reason="op")
    if hlen > 16:
        raise MalformedPacket(f"hlen {hlen} > 16", reason="hlen")
    if data[HEADER_LEN : HEADER_LEN + 4] != MAGIC:
        raise MalformedPacket("missing DHCP magic cookie", reason="cookie")
    opts: dict[int, bytes] = {}
    _parse_options(data, HEADER_LEN + 4, len(data), opts, "options")
    ov = opts.get(Opt.OVERLOAD)
    if ov is not None:
        if len(ov) != 1 or ov[0] not in (1, 2, 3):
            raise MalformedPacket("bad option overload (52) value", reason="overload")
        if ov[0] & 1:
            _parse_options(file, 0, len(file), opts, "file")
            file = b""
        if ov[0] & 2:
            _parse_options(sname, 0, len(sname), opts, "sname")
            sname = b""
    _check_lengths(opts)
    return DhcpPacket(
        op, htype, hlen, hops, xid, secs, flags, ci, yi, si, gi, ch,
        sname.split(b"\x00", 1)[0], file.split(b"\x00", 1)[0], opts,
    )  # fmt: skip


def peek_type(data: bytes) -> int | None:
    """The message type of a datagram not yet decoded, when option 53 is the first option (as
    every client sends it); None otherwise. For load shedding before a full decode."""
    at = HEADER_LEN + 4
    if len(data) > at + 2 and data[at] == Opt.MESSAGE_TYPE and data[at + 1] == 1:
        return data[at + 2]
    return None


def peek_mac(data: bytes) -> str | None:
    """The client hardware address of a datagram not yet decoded, when it is an Ethernet MAC
    (hlen 6); None otherwise."""
    if len(data) < HEADER_LEN or data[2] != 6:
        return None
    return data[28:34].hex(":")


def encode_option(code: int, value: bytes) -> bytes:
    """One option in wire form; values over 255 bytes are split (RFC 3396)."""
    if len(value) <= 255:
        return bytes((code, len(value))) + value
    return b"".join(
        bytes((code, len(value[i : i + 255]))) + value[i : i + 255]
        for i in range(0, len(value), 255)
    )


def encode(p: DhcpPacket, max_len: int = 0) -> bytes:
    """Wire form of ``p``, padded to 300 bytes. ``options`` values may be raw values (encoded
    here) — for speed the responder instead passes ``raw_options`` via :func:`encode_raw`.

    ``max_len`` (when > 0) is the largest DHCP message the client accepts: options that do not
    fit are left out, last first (53 and 54 come first and always fit).
    """
    return encode_raw(p, b"".join(encode_option(c, v) for c, v in p.options.items()), max_len)


def encode_raw(p: DhcpPacket, options_blob: bytes, max_len: int = 0) -> bytes:
    """Header of ``p`` + an already-encoded options blob + END, padded to 300 bytes."""
    head = HEADER.pack(
        p.op, p.htype, p.hlen, p.hops, p.xid, p.secs, p.flags,
        p.ciaddr, p.yiaddr, p.siaddr, p.giaddr, p.chaddr, p.sname, p.file,
    )  # fmt: skip
    if max_len and HEADER_LEN + 5 + len(options_blob) > max_len:
        options_blob = _fit(options_blob, max_len - HEADER_LEN - 5)
    out = head + MAGIC + options_blob + b"\xff"
    if len(out) < BOOTP_MIN_LEN:
        out += b"\x00" * (BOOTP_MIN_LEN - len(out))
    return out


def _fit(blob: bytes, room: int) -> bytes:
    """Cut an encoded option blob at the last whole option that fits in ``room`` bytes."""
    i = 0
    while i < len(blob):
        j = i + 2 + blob[i + 1]
        if j > room:
            break
        i = j
    return blob[:i]


def ip_bytes(ip: str | int) -> bytes:
    if isinstance(ip, int):
        return ip.to_bytes(4, "big")
    parts = ip.split(".")
    return bytes(int(x) for x in parts)


def ip_str(b: bytes) -> str:
    return f"{b[0]}.{b[1]}.{b[2]}.{b[3]}"
