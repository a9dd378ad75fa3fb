"""Responder decisions: DORA, bindings, renew/rebind/init-reboot, NAK, decline, release,
inform, relay, network-boot answers by architecture and iPXE, RFC 2131 §4.1 routing."""

from __future__ import annotations

import pytest

from regional_client.config.dhcp import DhcpConfig
from regional_client.dhcp.leases import Binding, ip_to_int
from regional_client.dhcp.packet import MessageType as M
from regional_client.dhcp.packet import Opt
from regional_client.dhcp.responder import DhcpState, Outcome, handle

from .clientlib import reply_summary, request

MAC = "52:54:00:00:00:01"
MAC2 = "52:54:00:00:00:02"
SID = "10.9.0.1"
NOW = 1_000_000.0


def make_cfg(**kw: object) -> DhcpConfig:
    base: dict[str, object] = {
        "interface": "rcdhcp0",
        "ip_range": {"start": "10.9.0.100", "end": "10.9.0.102"},
        "gateway": "10.9.0.254",
        "dns_servers": ["10.9.0.53", "10.9.0.54"],
        "tftp_server": SID,
        "lease_time": "1h",
        "relay_subnets": [
            {"subnet": "10.20.0.0/24", "gateway": "10.20.0.1",
             "ip_range": {"start": "10.20.0.10", "end": "10.20.0.20"}},
        ],
    }  # fmt: skip
    base.update(kw)
    return DhcpConfig.model_validate(base)


@pytest.fixture
def st() -> DhcpState:
    return DhcpState(make_cfg(), SID, "http://10.9.0.1:8081")


def dora(st: DhcpState, mac: str = MAC, now: float = NOW, **kw: object) -> tuple[Outcome, Outcome]:
    offer = handle(request(mac, M.DISCOVER, **kw), st, now)  # type: ignore[arg-type]
    assert offer.msg == M.OFFER, offer.drop
    ip = reply_summary(offer.data)["yiaddr"]
    ack = handle(
        request(mac, M.REQUEST, requested=ip, server_id=SID, **kw),  # type: ignore[arg-type]
        st,
        now,
    )
    return offer, ack


def test_dora_from_pool(st: DhcpState) -> None:
    offer, ack = dora(st)
    o, a = reply_summary(offer.data), reply_summary(ack.data)
    assert o["yiaddr"] == a["yiaddr"] == "10.9.0.100"
    assert a["type"] == M.ACK and a["server_id"] == SID and a["router"] == "10.9.0.254"
    assert a["dns"] == ["10.9.0.53", "10.9.0.54"] and a["mask"] == "255.255.255.0"
    assert a["lease_time"] == 3600 and a["siaddr"] == SID and a["file"] == "pxelinux.0"
    assert a["codes"][:2] == [Opt.MESSAGE_TYPE, Opt.SERVER_ID]
    assert offer.changes == [] and ack.changes[0][0] == "put"
    assert ack.assigned == (MAC, "10.9.0.100")
    assert offer.dest == ("10.9.0.100", 68) and offer.hw == bytes.fromhex("525400000001")
    assert st.table.leases[MAC].expires == NOW + 3600


def test_broadcast_flag_and_pool_exhaustion(st: DhcpState) -> None:
    for i in range(3):
        _o, a = dora(st, f"52:54:00:00:01:{i:02x}", flags=0x8000)
        assert a.dest == ("255.255.255.255", 68)
    out = handle(request(MAC, M.DISCOVER), st, NOW)
    assert out.msg is None and out.drop == "pool_exhausted"
    # one lease expires: its address is reclaimed (after the 1 s exhaustion back-off), and the
    # old holder's lease deleted
    st.table.leases["52:54:00:00:01:01"].expires = NOW - 1
    assert handle(request(MAC, M.DISCOVER), st, NOW + 0.5).drop == "pool_exhausted"
    _o, a = dora(st, now=NOW + 1)
    assert reply_summary(a.data)["yiaddr"] == "10.9.0.101"
    assert ("delete", "52:54:00:00:01:01") in a.changes


def test_static_binding_first_with_hostname_and_boot_file(st: DhcpState) -> None:
    st.table.set_binding(Binding(MAC, ip_to_int("10.9.0.50"), "node-7", "custom.efi"))
    _o, a = dora(st)
    s = reply_summary(a.data)
    assert s["yiaddr"] == "10.9.0.50" and s["hostname"] == "node-7" and s["file"] == "custom.efi"
    assert st.table.leases[MAC].static


def test_binding_ip_never_offered_to_others() -> None:
    st = DhcpState(make_cfg(), SID)
    st.table.set_binding(Binding(MAC2, ip_to_int("10.9.0.100")))
    _o, a = dora(st)
    assert reply_summary(a.data)["yiaddr"] == "10.9.0.101"


def test_request_for_other_server_drops_offer(st: DhcpState) -> None:
    handle(request(MAC, M.DISCOVER), st, NOW)
    out = handle(request(MAC, M.REQUEST, requested="10.9.0.100", server_id="10.9.0.2"), st, NOW)
    assert out.msg is None and out.drop == "other_server" and MAC not in st.table.offers


def test_request_wrong_address_is_nakked_broadcast(st: DhcpState) -> None:
    dora(st, MAC2)  # MAC2 holds .100
    out = handle(request(MAC, M.REQUEST, requested="10.9.0.100", server_id=SID), st, NOW)
    assert out.msg == M.NAK and out.dest == ("255.255.255.255", 68)
    s = reply_summary(out.data)
    assert s["yiaddr"] == "0.0.0.0" and Opt.MESSAGE in s["codes"] and "lease_time" not in s


def test_init_reboot(st: DhcpState) -> None:
    dora(st)
    ok = handle(request(MAC, M.REQUEST, requested="10.9.0.100"), st, NOW + 10)
    assert ok.msg == M.ACK and ok.assigned is None  # same address: not a new assignment
    bad = handle(request(MAC, M.REQUEST, requested="192.168.1.5"), st, NOW + 10)
    assert bad.msg == M.NAK


def test_renew_and_rebind_extend_lease_unicast(st: DhcpState) -> None:
    dora(st)
    out = handle(request(MAC, M.REQUEST, ciaddr="10.9.0.100"), st, NOW + 1800)
    assert out.msg == M.ACK and out.dest == ("10.9.0.100", 68) and out.hw is None
    assert reply_summary(out.data)["yiaddr"] == "10.9.0.100"
    assert st.table.leases[MAC].expires == NOW + 1800 + 3600
    # renewing an address someone else holds: NAK
    dora(st, MAC2)
    out = handle(request(MAC, M.REQUEST, ciaddr="10.9.0.101"), st, NOW + 1800)
    assert out.msg == M.NAK


def test_renew_after_restart_without_record_acks_free_address(st: DhcpState) -> None:
    out = handle(request(MAC, M.REQUEST, ciaddr="10.9.0.102"), st, NOW)
    assert out.msg == M.ACK and st.table.leases[MAC].ip == ip_to_int("10.9.0.102")


def test_binding_added_later_naks_old_dynamic_address(st: DhcpState) -> None:
    dora(st)
    st.table.set_binding(Binding(MAC, ip_to_int("10.9.0.60")))
    out = handle(request(MAC, M.REQUEST, ciaddr="10.9.0.100"), st, NOW + 100)
    assert out.msg == M.NAK
    _o, a = dora(st, now=NOW + 101)
    assert reply_summary(a.data)["yiaddr"] == "10.9.0.60"


def test_decline_quarantines(st: DhcpState) -> None:
    dora(st)
    out = handle(request(MAC, M.DECLINE, requested="10.9.0.100", server_id=SID), st, NOW)
    assert out.msg is None and out.changes == [("delete", MAC)]
    o, _a = dora(st, MAC2)
    assert reply_summary(o.data)["yiaddr"] == "10.9.0.101"
    assert not st.table.is_free(ip_to_int("10.9.0.100"), MAC2, NOW + 599)
    assert st.table.is_free(ip_to_int("10.9.0.100"), MAC2, NOW + 601)


def test_release_expires_lease_same_client_gets_it_back(st: DhcpState) -> None:
    dora(st)
    out = handle(request(MAC, M.RELEASE, ciaddr="10.9.0.100", server_id=SID), st, NOW + 5)
    assert out.msg is None and out.changes and st.table.leases[MAC].expires == NOW + 5
    o, _a = dora(st, now=NOW + 6)
    assert reply_summary(o.data)["yiaddr"] == "10.9.0.100"


def test_inform_answers_options_without_lease(st: DhcpState) -> None:
    out = handle(request(MAC, M.INFORM, ciaddr="10.9.0.77"), st, NOW)
    s = reply_summary(out.data)
    assert out.msg == M.ACK and out.dest == ("10.9.0.77", 68)
    assert s["yiaddr"] == "0.0.0.0" and "lease_time" not in s and s["router"] == "10.9.0.254"
    assert out.changes == []


def test_relayed_discover_request_answered_to_relay(st: DhcpState) -> None:
    agent = {Opt.RELAY_AGENT: b"\x01\x04eth7"}
    offer, ack = dora(st, giaddr="10.20.0.1", options=agent)
    o, a = reply_summary(offer.data), reply_summary(ack.data)
    assert o["yiaddr"] == a["yiaddr"] == "10.20.0.10" and a["router"] == "10.20.0.1"
    assert offer.dest == ack.dest == ("10.20.0.1", 67)
    assert Opt.RELAY_AGENT in a["codes"]


def test_relay_nak_has_broadcast_bit(st: DhcpState) -> None:
    out = handle(request(MAC, M.REQUEST, requested="10.9.0.100", giaddr="10.20.0.1"), st, NOW)
    assert out.msg == M.NAK and out.dest == ("10.20.0.1", 67)
    assert out.data[10] & 0x80


def test_relay_reply_port_configurable() -> None:
    st = DhcpState(make_cfg(relay_reply_port=40067), SID)
    offer = handle(request(MAC, M.DISCOVER, giaddr="10.20.0.1"), st, NOW)
    assert offer.dest == ("10.20.0.1", 40067)


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"giaddr": "172.16.0.1"}, "unknown_relay"),
    ],
)
def test_unknown_relay_dropped(st: DhcpState, kw: dict[str, str], reason: str) -> None:
    assert handle(request(MAC, M.DISCOVER, **kw), st, NOW).drop == reason  # type: ignore[arg-type]


def test_not_on_interface_dropped(st: DhcpState) -> None:
    out = handle(request(MAC, M.DISCOVER), st, NOW, local=False)
    assert out.msg is None and out.drop == "not_local"


def test_bootp_and_replies_and_other_hw_dropped(st: DhcpState) -> None:
    raw = bytearray(request(MAC, M.DISCOVER))
    raw[0] = 2
    assert handle(bytes(raw), st, NOW).drop == "not_request"
    raw[0], raw[1] = 1, 6
    assert handle(bytes(raw), st, NOW).drop == "hw_type"
    assert handle(b"\x00" * 10, st, NOW).drop == "malformed"


def _boot(st: DhcpState, opts: dict[int, bytes]) -> dict[str, object]:
    offer = handle(request(MAC, M.DISCOVER, prl=b"\x01\x03\x42\x43\x3c\x2b", options=opts), st, NOW)
    return reply_summary(offer.data)


@pytest.mark.parametrize(
    ("arch", "vendor", "file", "echo"),
    [
        (0, b"PXEClient:Arch:00000:UNDI:002001", "pxelinux.0", "PXEClient"),
        (7, b"PXEClient:Arch:00007:UNDI:003016", "grubnetx64.efi", "PXEClient"),
        (9, b"PXEClient:Arch:00009:UNDI:003016", "grubnetx64.efi", "PXEClient"),
        (11, b"PXEClient:Arch:00011:UNDI:003016", "grubnetaa64.efi", "PXEClient"),
        (16, b"HTTPClient:Arch:00016:UNDI:003001", "http://10.9.0.1:8081/boot/files/ipxe.efi",
         "HTTPClient"),
    ],
)  # fmt: skip
def test_boot_file_by_arch(st: DhcpState, arch: int, vendor: bytes, file: str, echo: str) -> None:
    s = _boot(st, {Opt.CLIENT_ARCH: arch.to_bytes(2, "big"), Opt.VENDOR_CLASS: vendor})
    assert s["bootfile"] == file and s["file"] == file and s["vendor"] == echo
    assert s["tftp"] == SID and s["siaddr"] == SID
    if echo == "PXEClient":
        assert Opt.VENDOR_SPECIFIC in s["codes"]  # type: ignore[operator]


@pytest.mark.parametrize(
    "opts",
    [
        {Opt.USER_CLASS: b"iPXE", Opt.CLIENT_ARCH: b"\x00\x00"},
        {Opt.IPXE_ENCAP: b"\x13\x01\x01", Opt.CLIENT_ARCH: b"\x00\x07"},
    ],
)
def test_ipxe_gets_script_url(st: DhcpState, opts: dict[int, bytes]) -> None:
    s = _boot(st, opts)
    assert s["bootfile"] == f"http://10.9.0.1:8081/boot/ipxe/{MAC}" == s["file"]


def test_binding_boot_file_does_not_make_ipxe_loop(st: DhcpState) -> None:
    st.table.set_binding(Binding(MAC, ip_to_int("10.9.0.50"), None, "undionly.kpxe"))
    assert _boot(st, {})["bootfile"] == "undionly.kpxe"
    assert _boot(st, {Opt.USER_CLASS: b"iPXE"})["bootfile"].endswith(f"/ipxe/{MAC}")  # type: ignore[union-attr]


def test_prl_order_honoured_and_unrequested_left_out(st: DhcpState) -> None:
    offer = handle(request(MAC, M.DISCOVER, prl=b"\x06\x03"), st, NOW)
    codes = reply_summary(offer.data)["codes"]
    assert codes[:5] == [53, 54, 51, 58, 59]
    assert codes[5:] == [1, 6, 3]


def test_max_message_size_respected(st: DhcpState) -> None:
    long = "x" * 200
    st.table.set_binding(Binding(MAC, ip_to_int("10.9.0.50"), "h" * 250, long))
    big = handle(request(MAC, M.DISCOVER, options={Opt.MAX_MESSAGE_SIZE: b"\x05\xdc"}), st, NOW)
    small = handle(request(MAC, M.DISCOVER), st, NOW)
    assert len(big.data) > 548 >= len(small.data)


def test_offer_timeout_frees_address(st: DhcpState) -> None:
    handle(request(MAC, M.DISCOVER), st, NOW)
    o = handle(request(MAC2, M.DISCOVER), st, NOW + 1)
    assert reply_summary(o.data)["yiaddr"] == "10.9.0.101"
    st.table.purge(NOW + 120)
    assert MAC not in st.table.offers


def test_binding_in_other_subnet_not_served_here(st: DhcpState) -> None:
    st.table.set_binding(Binding(MAC, ip_to_int("10.20.0.5")))
    assert handle(request(MAC, M.DISCOVER), st, NOW).drop == "binding_in_other_subnet"
    offer = handle(request(MAC, M.DISCOVER, giaddr="10.20.0.1"), st, NOW)
    assert reply_summary(offer.data)["yiaddr"] == "10.20.0.5"


def test_static_only_subnet_ignores_unknown_clients() -> None:
    st = DhcpState(make_cfg(ip_range=None), SID)
    assert handle(request(MAC, M.DISCOVER), st, NOW).drop == "no_binding"
