"""Build client requests and read replies in tests (wraps the codec, no I/O)."""

from __future__ import annotations

from regional_client.dhcp.packet import (
    BOOTREQUEST,
    ZERO_IP,
    DhcpPacket,
    MessageType,
    Opt,
    decode,
    encode,
    ip_bytes,
    ip_str,
)


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", "")) + b"\x00" * 10


def request(
    mac: str,
    msg: MessageType,
    *,
    xid: int = 0x1234,
    flags: int = 0,
    ciaddr: str | None = None,
    giaddr: str | None = None,
    requested: str | None = None,
    server_id: str | None = None,
    prl: bytes | None = b"\x01\x03\x06\x0c\x0f\x42\x43",
    options: dict[int, bytes] | None = None,
) -> bytes:
    opts: dict[int, bytes] = {Opt.MESSAGE_TYPE: bytes((msg,))}
    if requested:
        opts[Opt.REQUESTED_IP] = ip_bytes(requested)
    if server_id:
        opts[Opt.SERVER_ID] = ip_bytes(server_id)
    if prl:
        opts[Opt.PARAM_REQUEST] = prl
    opts.update(options or {})
    p = DhcpPacket(
        op=BOOTREQUEST,
        xid=xid,
        flags=flags,
        ciaddr=ip_bytes(ciaddr) if ciaddr else ZERO_IP,
        giaddr=ip_bytes(giaddr) if giaddr else ZERO_IP,
        chaddr=mac_bytes(mac),
        options=opts,
    )
    return encode(p)


def reply_summary(data: bytes) -> dict[str, object]:
    """The interesting parts of a reply, decoded."""
    p = decode(data)
    o = p.options
    out: dict[str, object] = {
        "type": MessageType(p.msg_type) if p.msg_type else None,
        "yiaddr": ip_str(p.yiaddr),
        "siaddr": ip_str(p.siaddr),
        "file": p.file.decode(),
        "len": len(data),
        "codes": list(o),
    }
    if Opt.SERVER_ID in o:
        out["server_id"] = ip_str(o[Opt.SERVER_ID])
    if Opt.ROUTER in o:
        out["router"] = ip_str(o[Opt.ROUTER][:4])
    if Opt.DNS in o:
        v = o[Opt.DNS]
        out["dns"] = [ip_str(v[i : i + 4]) for i in range(0, len(v), 4)]
    if Opt.SUBNET_MASK in o:
        out["mask"] = ip_str(o[Opt.SUBNET_MASK])
    if Opt.BOOTFILE in o:
        out["bootfile"] = o[Opt.BOOTFILE].decode()
    if Opt.VENDOR_CLASS in o:
        out["vendor"] = o[Opt.VENDOR_CLASS].decode()
    if Opt.HOSTNAME in o:
        out["hostname"] = o[Opt.HOSTNAME].decode()
    if Opt.LEASE_TIME in o:
        out["lease_time"] = int.from_bytes(o[Opt.LEASE_TIME])
    if Opt.TFTP_SERVER in o:
        out["tftp"] = o[Opt.TFTP_SERVER].decode()
    return out
