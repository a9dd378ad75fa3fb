"""DHCP decisions, sans-IO: ``respond(packet, state, now, local) -> Outcome``.

The responder sees one decoded request, the :class:`DhcpState` (subnets, lease table, boot
settings) and the time; it answers with an :class:`Outcome`: the encoded reply and where to send
it (RFC 2131 §4.1), the lease changes the shell must persist *before* sending, and a drop reason
when nothing is sent. It never touches a socket, a clock or the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Network

from regional_client.config.dhcp import DhcpConfig
from regional_client.dhcp.leases import Change, LeaseTable, Subnet, int_to_ip
from regional_client.dhcp.options import BootAnswer, OptionBuilder, SubnetOptions, boot_answer
from regional_client.dhcp.packet import (
    BOOTREPLY,
    BOOTREQUEST,
    BROADCAST_FLAG,
    ZERO_IP,
    DhcpPacket,
    MalformedPacket,
    MessageType,
    Opt,
    decode,
    encode_option,
    encode_raw,
    ip_bytes,
)

__all__ = ["DhcpState", "Outcome", "handle", "respond"]

BROADCAST_ADDR = "255.255.255.255"
_NAK_TEXT = {
    "wrong_address": b"requested address not available to this client",
    "wrong_subnet": b"requested address not on this network",
}


@dataclass(slots=True)
class Outcome:
    """What to do with one request: send ``data`` to ``dest`` (after persisting ``changes``),
    or nothing (``drop`` names why, for metrics). ``hw`` is set when the reply must go unicast
    to an address the client does not answer ARP for yet (RFC 2131 §4.1)."""

    msg: MessageType | None = None
    data: bytes = b""
    dest: tuple[str, int] | None = None
    hw: bytes | None = None
    changes: list[Change] = field(default_factory=list)
    drop: str | None = None
    assigned: tuple[str, str] | None = None
    """``(mac, ip)`` when a new address was acknowledged (logged as ``lease_assigned``)."""
    request: int = 0
    """Message type of the request (0: not a parseable DHCP message)."""


def _drop(reason: str, changes: list[Change] | None = None) -> Outcome:
    return Outcome(drop=reason, changes=changes or [])


class DhcpState:
    """Everything the responder decides with: built once from the config, then mutated only
    through :attr:`table` (leases, bindings, offers)."""

    def __init__(
        self,
        cfg: DhcpConfig,
        server_id: str,
        regional_url: str = "",
        table: LeaseTable | None = None,
    ) -> None:
        self.cfg = cfg
        self.table = table or LeaseTable()
        self.server_id = ip_bytes(server_id)
        self.next_server = ip_bytes(str(cfg.tftp_server or server_id))
        self.regional_url = regional_url.rstrip("/")
        self.builder = OptionBuilder()
        self.boot_files = dict(cfg.boot_files)
        self.subnets: list[Subnet] = []
        self.local: Subnet | None = None
        self.client_port = cfg.client_port
        self.relay_port = cfg.relay_reply_port
        net = cfg.local_subnet()
        if cfg.interface is not None and net is not None:
            gw = [cfg.gateway] if cfg.gateway else []
            self.local = self._add(net, cfg.ip_range, gw, cfg.dns_servers, cfg.lease_time)
        for rs in cfg.relay_subnets:
            gw = [rs.gateway] if rs.gateway else []
            dns = cfg.dns_servers if rs.dns_servers is None else rs.dns_servers
            self._add(rs.subnet, rs.ip_range, gw, dns, rs.lease_time or cfg.lease_time)

    def _add(self, net: IPv4Network, rng: object, gw: list, dns: list, lease: float) -> Subnet:
        start = int(rng.start) if rng is not None else None  # type: ignore[attr-defined]
        end = int(rng.end) if rng is not None else None  # type: ignore[attr-defined]
        reserved = {int(g) for g in gw} | {int.from_bytes(self.server_id)}
        sub = Subnet(net, start, end, lease, reserved, ident=len(self.subnets))
        sub.data = SubnetOptions(
            ip_bytes(str(net.netmask)),
            ip_bytes(str(net.broadcast_address)),
            [ip_bytes(str(g)) for g in gw],
            [ip_bytes(str(d)) for d in dns],
            self.cfg.domain_name,
            self.server_id,
            str(self.cfg.tftp_server) if self.cfg.tftp_server else None,
            int(lease),
        )
        self.subnets.append(sub)
        return sub

    def subnet_of(self, ip: int) -> Subnet | None:
        for sub in self.subnets:
            if ip & sub.mask == sub.net:
                return sub
        return None

    def served(self, ip: int) -> bool:
        return self.subnet_of(ip) is not None


def handle(data: bytes, state: DhcpState, now: float, local: bool = True) -> Outcome:
    """Decode and answer one datagram; a malformed one is dropped (``drop="malformed"``)."""
    try:
        pkt = decode(data)
    except MalformedPacket:
        return _drop("malformed")
    return respond(pkt, state, now, local)


def respond(pkt: DhcpPacket, state: DhcpState, now: float, local: bool = True) -> Outcome:
    """Answer one request. ``local`` is True when it arrived on the served interface."""
    if pkt.op != BOOTREQUEST:
        return _drop("not_request")
    mt = pkt.msg_type
    if mt is None:
        return _drop("bootp")
    sub = _subnet(pkt, mt, state, local)
    if isinstance(sub, str):
        out = _drop(sub)
    else:
        handler = _HANDLERS.get(mt)
        out = _drop("not_request") if handler is None else handler(pkt, state, sub, now)
    out.request = mt
    return out


def _subnet(pkt: DhcpPacket, mt: int, state: DhcpState, local: bool) -> Subnet | str:
    """The subnet serving this request, or the reason it is not served."""
    if pkt.htype != 1 or pkt.hlen != 6:
        return "hw_type"
    if pkt.giaddr != ZERO_IP:
        sub = state.subnet_of(int.from_bytes(pkt.giaddr))
        return "unknown_relay" if sub is None else sub
    if pkt.ciaddr != ZERO_IP and mt in (MessageType.REQUEST, MessageType.INFORM):
        sub = state.subnet_of(int.from_bytes(pkt.ciaddr))  # a unicast renew may be routed
        if sub is None or (sub is state.local and not local):
            return "foreign_subnet"
        return sub
    if local and state.local is not None:
        return state.local
    return "not_local"


def _requested(pkt: DhcpPacket) -> int | None:
    v = pkt.options.get(Opt.REQUESTED_IP)
    return None if v is None else int.from_bytes(v)


def _discover(pkt: DhcpPacket, st: DhcpState, sub: Subnet, now: float) -> Outcome:
    mac = pkt.mac
    ip = st.table.choose(sub, mac, _requested(pkt), now)
    if ip is None:
        if mac in st.table.bindings:
            return _drop("binding_in_other_subnet")
        return _drop("no_binding" if sub.pool_start is None else "pool_exhausted")
    st.table.offer(mac, ip, now + st.cfg.offer_timeout)
    return _reply(pkt, st, sub, MessageType.OFFER, ip)


def _request(pkt: DhcpPacket, st: DhcpState, sub: Subnet, now: float) -> Outcome:
    mac, table = pkt.mac, st.table
    sid = pkt.options.get(Opt.SERVER_ID)
    if sid is not None and sid != st.server_id:
        table.drop_offer(mac)  # the client chose another server
        return _drop("other_server")
    ip = _requested(pkt) if pkt.ciaddr == ZERO_IP else int.from_bytes(pkt.ciaddr)
    if ip is None:
        return _drop("no_address")
    if not sub.contains(ip):
        return _nak(pkt, st, sub, "wrong_subnet")
    if not table.acceptable(sub, mac, ip, now):
        return _nak(pkt, st, sub, "wrong_address")
    b = table.bindings.get(mac)
    lease, changes, fresh = table.commit(
        mac, ip, now + sub.lease_time, b.hostname if b else None, b is not None
    )
    out = _reply(pkt, st, sub, MessageType.ACK, ip)
    out.changes = changes
    if fresh:
        out.assigned = (mac, int_to_ip(lease.ip))
    return out


def _decline(pkt: DhcpPacket, st: DhcpState, sub: Subnet, now: float) -> Outcome:
    ip = _requested(pkt)
    if pkt.options.get(Opt.SERVER_ID) != st.server_id or ip is None:
        return _drop("other_server")
    return Outcome(changes=st.table.decline(pkt.mac, ip, now + st.cfg.decline_quarantine))


def _release(pkt: DhcpPacket, st: DhcpState, sub: Subnet, now: float) -> Outcome:
    if pkt.options.get(Opt.SERVER_ID) != st.server_id:
        return _drop("other_server")
    return Outcome(changes=st.table.release(pkt.mac, int.from_bytes(pkt.ciaddr), now))


def _inform(pkt: DhcpPacket, st: DhcpState, sub: Subnet, now: float) -> Outcome:
    if pkt.ciaddr == ZERO_IP:
        return _drop("no_address")
    return _reply(pkt, st, sub, MessageType.ACK, None)


def _boot(pkt: DhcpPacket, st: DhcpState) -> BootAnswer:
    mac = pkt.mac
    b = st.table.bindings.get(mac)
    return boot_answer(
        pkt.options,
        mac,
        b.boot_file if b else None,
        st.boot_files,
        st.cfg.boot_file,
        st.cfg.ipxe_script_url,
        st.regional_url,
    )


def _max_len(pkt: DhcpPacket) -> int:
    v = pkt.options.get(Opt.MAX_MESSAGE_SIZE)
    return (v[0] << 8 | v[1]) - 28 if v is not None else 548


def _reply(
    pkt: DhcpPacket, st: DhcpState, sub: Subnet, msg: MessageType, ip: int | None
) -> Outcome:
    boot = _boot(pkt, st)
    b = st.table.bindings.get(pkt.mac)
    prl = pkt.options.get(Opt.PARAM_REQUEST)
    blob = st.builder.build(
        sub.ident, sub.data, msg, prl, boot, b.hostname if b else None, ip is not None
    )
    relay = pkt.options.get(Opt.RELAY_AGENT)
    if relay is not None and pkt.giaddr != ZERO_IP:
        blob += encode_option(Opt.RELAY_AGENT, relay)  # RFC 3046: echo option 82
    fileb = boot.file.encode() if boot.file else b""
    yi = ZERO_IP if ip is None else ip.to_bytes(4, "big")
    rep = DhcpPacket(
        BOOTREPLY, pkt.htype, pkt.hlen, 0, pkt.xid, 0, pkt.flags,
        pkt.ciaddr if msg == MessageType.ACK else ZERO_IP, yi, st.next_server, pkt.giaddr,
        pkt.chaddr, b"", fileb if len(fileb) < 128 else b"",
    )  # fmt: skip
    out = Outcome(msg, encode_raw(rep, blob, _max_len(pkt)))
    _route(pkt, st, out, yi, nak=False)
    return out


def _nak(pkt: DhcpPacket, st: DhcpState, sub: Subnet, why: str) -> Outcome:
    blob = st.builder.build(sub.ident, sub.data, MessageType.NAK, None, None, None, False)
    blob += encode_option(Opt.MESSAGE, _NAK_TEXT[why])
    flags = pkt.flags | BROADCAST_FLAG if pkt.giaddr != ZERO_IP else pkt.flags
    rep = DhcpPacket(
        BOOTREPLY, pkt.htype, pkt.hlen, 0, pkt.xid, 0, flags,
        ZERO_IP, ZERO_IP, ZERO_IP, pkt.giaddr, pkt.chaddr,
    )  # fmt: skip
    out = Outcome(MessageType.NAK, encode_raw(rep, blob), drop=None)
    _route(pkt, st, out, ZERO_IP, nak=True)
    return out


def _route(pkt: DhcpPacket, st: DhcpState, out: Outcome, yi: bytes, nak: bool) -> None:
    """Destination per RFC 2131 §4.1."""
    if pkt.giaddr != ZERO_IP:
        out.dest = (_s(pkt.giaddr), st.relay_port)
    elif nak:
        out.dest = (BROADCAST_ADDR, st.client_port)
    elif pkt.ciaddr != ZERO_IP:
        out.dest = (_s(pkt.ciaddr), st.client_port)
    elif pkt.flags & BROADCAST_FLAG or yi == ZERO_IP:
        out.dest = (BROADCAST_ADDR, st.client_port)
    else:
        out.dest = (_s(yi), st.client_port)
        out.hw = pkt.chaddr[:6]


def _s(b: bytes) -> str:
    return f"{b[0]}.{b[1]}.{b[2]}.{b[3]}"


_HANDLERS: dict[int, Callable[[DhcpPacket, DhcpState, Subnet, float], Outcome]] = {
    MessageType.DISCOVER: _discover,
    MessageType.REQUEST: _request,
    MessageType.DECLINE: _decline,
    MessageType.RELEASE: _release,
    MessageType.INFORM: _inform,
}
