"""DhcpService on a real etcd, over real UDP on loopback (a relay socket as the peer):
persistence, restart, bindings API and its validation, watch, metrics and log lines."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from regional_client.config.dhcp import DhcpConfig
from regional_client.core.errors import Conflict, ValidationError
from regional_client.core.logs import setup_logging
from regional_client.core.metrics import Metrics
from regional_client.dhcp.packet import MessageType as M
from regional_client.dhcp.service import DhcpService
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from tests.helpers.etcd import EtcdProcess

from .clientlib import reply_summary, request
from .conftest import Relay, ServiceFactory, free_udp_port

MAC = "52:54:00:aa:00:01"
MAC2 = "52:54:00:aa:00:02"
GI = "127.0.0.1"


async def dora(svc, relay: Relay, mac: str) -> dict[str, object]:
    port = svc.cfg.port
    offer = await relay.ask(request(mac, M.DISCOVER, giaddr=GI), port)
    assert offer is not None
    ip = reply_summary(offer)["yiaddr"]
    ack = await relay.ask(request(mac, M.REQUEST, giaddr=GI, requested=ip, server_id=GI), port)
    assert ack is not None
    return reply_summary(ack)


async def test_lease_persisted_and_restart_hands_out_nothing_twice(
    loopback_service: ServiceFactory, relay: Relay, etcd_store: EtcdStore, keys: Keys
) -> None:
    svc = await loopback_service()
    a = await dora(svc, relay, MAC)
    assert a["type"] == M.ACK and a["yiaddr"] == "127.0.0.100"
    kv = await etcd_store.get(keys.lease(MAC))
    assert kv is not None and kv.value["ip"] == "127.0.0.100" and kv.value["mac"] == MAC
    await svc.stop()
    svc2 = await loopback_service()
    assert svc2.get_lease(MAC)["ip"] == "127.0.0.100"  # type: ignore[index]
    b = await dora(svc2, relay, MAC2)
    assert b["yiaddr"] == "127.0.0.101"
    # the first client renews (relayed) after the restart and keeps its address
    renew = await relay.ask(request(MAC, M.REQUEST, giaddr=GI, ciaddr="127.0.0.100"), svc2.cfg.port)
    assert renew is not None and reply_summary(renew)["type"] == M.ACK


async def test_ack_withheld_while_etcd_is_down_then_served(
    own_etcd: EtcdProcess, keys: Keys, relay: Relay
) -> None:
    """etcd killed: the DHCPACK is withheld (the address could not be made durable); etcd back:
    the client's retry is acknowledged and the lease is in etcd. (Whether the first write
    fails — ``drops_total{reason="store_error"}`` — or waits for etcd depends on how long the
    store's gRPC channel takes to give up; either way nothing is acknowledged unpersisted.)"""
    store = EtcdStore([own_etcd.endpoint], dial_timeout=1, request_timeout=1)
    await store.connect()
    cfg = DhcpConfig.model_validate(
        {"interface": None, "listen_addr": "127.0.0.1", "port": free_udp_port(),
         "relay_reply_port": relay.port, "server_id": GI, "persist_timeout": "3s",
         "relay_subnets": [{"subnet": "127.0.0.0/24",
                            "ip_range": {"start": "127.0.0.100", "end": "127.0.0.104"}}]}
    )  # fmt: skip
    svc = DhcpService(cfg, store, keys, Metrics(keys.idc))
    await svc.start()
    try:
        req = request(MAC, M.REQUEST, giaddr=GI, requested="127.0.0.100", server_id=GI)
        assert await relay.ask(request(MAC, M.DISCOVER, giaddr=GI), cfg.port) is not None
        own_etcd.kill9()
        assert await relay.ask(req, cfg.port, timeout=2) is None
        assert svc.get_lease(MAC) is not None  # decided in memory, not yet acknowledged
        own_etcd.start()
        ack = None
        for _ in range(20):  # the client retransmits until etcd answers again
            ack = await relay.ask(req, cfg.port, timeout=2)
            if ack is not None:
                break
        assert ack is not None and reply_summary(ack)["type"] == M.ACK
        kv = await store.get(keys.lease(MAC))
        assert kv is not None and kv.value["ip"] == "127.0.0.100"
        assert svc.health()["pending_writes"] == 0
    finally:
        await svc.stop()
        await store.close()


async def test_binding_api_validation(loopback_service: ServiceFactory, keys: Keys) -> None:
    svc = await loopback_service()
    b = await svc.add_binding("52-54-00-AA-00-01", "127.0.0.50", hostname="node1")
    assert b == {"mac": MAC, "ip": "127.0.0.50", "hostname": "node1", "boot_file": None}
    assert await svc.add_binding(MAC, "127.0.0.50", hostname="node1") == b  # idempotent
    with pytest.raises(ValidationError, match="MAC"):
        await svc.add_binding("52:54:00:zz:00:01", "127.0.0.51")
    with pytest.raises(ValidationError, match="IPv4"):
        await svc.add_binding(MAC2, "127.0.0.300")
    with pytest.raises(ValidationError, match="served subnet"):
        await svc.add_binding(MAC2, "10.1.2.3")
    with pytest.raises(ValidationError, match="reserved"):
        await svc.add_binding(MAC2, "127.0.0.255")
    with pytest.raises(ValidationError, match="hostname"):
        await svc.add_binding(MAC2, "127.0.0.52", hostname="bad name;rm")
    with pytest.raises(Conflict, match="already bound"):
        await svc.add_binding(MAC2, "127.0.0.50")
    assert svc.get_binding(MAC2) is None


async def test_binding_served_and_removed(
    loopback_service: ServiceFactory, relay: Relay, etcd_store: EtcdStore, keys: Keys
) -> None:
    svc = await loopback_service()
    await svc.add_binding(MAC, "127.0.0.50", hostname="node1", boot_file="special.efi")
    kv = await etcd_store.get(keys.binding(MAC))
    assert kv is not None and kv.value["ip"] == "127.0.0.50"
    a = await dora(svc, relay, MAC)
    assert a["yiaddr"] == "127.0.0.50" and a["hostname"] == "node1"
    assert a["file"] == "special.efi"
    assert svc.get_lease(MAC)["static"] is True  # type: ignore[index]
    assert await svc.remove_binding(MAC)
    assert await etcd_store.get(keys.binding(MAC)) is None
    assert await etcd_store.get(keys.lease(MAC)) is None
    assert not await svc.remove_binding(MAC)
    a = await dora(svc, relay, MAC)
    assert a["yiaddr"] == "127.0.0.100"


async def test_leased_address_cannot_be_bound_to_other_mac(
    loopback_service: ServiceFactory, relay: Relay
) -> None:
    svc = await loopback_service()
    await dora(svc, relay, MAC)
    with pytest.raises(Conflict, match="leased"):
        await svc.add_binding(MAC2, "127.0.0.100")


async def test_binding_written_elsewhere_is_seen_via_watch(
    loopback_service: ServiceFactory, relay: Relay, etcd_store: EtcdStore, keys: Keys
) -> None:
    svc = await loopback_service()
    other = await loopback_service()  # a second instance (e.g. the admin API of another node)
    await other.add_binding(MAC, "127.0.0.60")
    for _ in range(100):
        if svc.get_binding(MAC):
            break
        await asyncio.sleep(0.02)
    assert svc.get_binding(MAC) == {
        "mac": MAC, "ip": "127.0.0.60", "hostname": None, "boot_file": None,
    }  # fmt: skip
    await etcd_store.put(keys.binding(MAC2), {"mac": MAC2, "ip": "not-an-ip"})
    await etcd_store.delete(keys.binding(MAC))
    for _ in range(100):
        if svc.get_binding(MAC) is None:
            break
        await asyncio.sleep(0.02)
    assert svc.get_binding(MAC) is None and svc.get_binding(MAC2) is None


async def test_invalid_stored_records_are_skipped(
    loopback_service: ServiceFactory, etcd_store: EtcdStore, keys: Keys
) -> None:
    await etcd_store.put(keys.lease(MAC), {"mac": MAC, "ip": "127.0.0.101", "expires_at": 9e9})
    await etcd_store.put(keys.lease(MAC2), {"garbage": True})
    await etcd_store.put(keys.binding(MAC2), {"mac": MAC, "ip": "127.0.0.70"})  # key/mac mismatch
    svc = await loopback_service()
    assert svc.get_lease(MAC)["ip"] == "127.0.0.101"  # type: ignore[index]
    assert sorted(svc.invalid_records) == sorted([keys.lease(MAC2), keys.binding(MAC2)])
    assert svc.bindings() == []


async def test_metrics_and_lease_log_line(
    loopback_service: ServiceFactory, relay: Relay, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("dcx", "info")
    try:
        svc = await loopback_service()
        await dora(svc, relay, MAC)
        await relay.ask(b"\x01garbage", svc.cfg.port, timeout=0.3)
        svc.flush_metrics()
        text = svc.metrics.render().decode()
        idc = svc.metrics.idc
        assert f'regional_client_dhcp_leases_total{{idc="{idc}"}} 1.0' in text
        for needle in ('type="discover"', 'type="request"', 'type="offer"', 'type="ack"',
                       'reason="malformed"'):  # fmt: skip
            assert needle in text, needle
        lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
        hit = [x for x in lines if x.get("action") == "lease_assigned"]
        assert hit and hit[0]["mac"] == MAC and hit[0]["ip"] == "127.0.0.100"
        assert hit[0]["module"] == "dhcp" and hit[0]["idc"] == "dcx"
    finally:
        logging.getLogger("regional_client").handlers.clear()


async def test_overload_sheds_discovers_but_completes_requests(
    loopback_service: ServiceFactory, relay: Relay
) -> None:
    svc = await loopback_service()
    offer = await relay.ask(request(MAC, M.DISCOVER, giaddr=GI), svc.cfg.port)
    assert offer is not None
    ep = svc.endpoints[0]
    limit, ep.shed_above = ep.shed_above, -1  # as if the receive queue were long
    shed = await relay.ask(request(MAC2, M.DISCOVER, giaddr=GI), svc.cfg.port, timeout=0.3)
    assert shed is None
    ep.shed_above = limit
    ack = await relay.ask(
        request(MAC, M.REQUEST, giaddr=GI, requested="127.0.0.100", server_id=GI), svc.cfg.port
    )
    assert ack is not None and reply_summary(ack)["type"] == M.ACK
    svc.flush_metrics()
    assert 'reason="overload"' in svc.metrics.render().decode()


async def test_workflow_calls_are_audited(loopback_service: ServiceFactory, tmp_path) -> None:
    from regional_client.core.audit import Audit

    svc = await loopback_service()
    svc.audit = Audit(tmp_path / "audit.log", "dc")
    await svc.add_binding(MAC, "127.0.0.80", hostname="node_80", actor="workflow", sn="SN80")
    with pytest.raises(Conflict):
        await svc.add_binding(MAC2, "127.0.0.80", actor="workflow", sn="SN81")
    assert await svc.remove_binding(MAC, actor="workflow", sn="SN80")
    assert not await svc.remove_binding(MAC, actor="workflow", sn="SN80")
    svc.audit.close()
    recs = [json.loads(x) for x in (tmp_path / "audit.log").read_text().splitlines()]
    assert [(r["action"], r["sn"], r["result"][:7]) for r in recs] == [
        ("dhcp.binding.add", "SN80", "ok"),
        ("dhcp.binding.add", "SN81", "127.0.0"),
        ("dhcp.binding.delete", "SN80", "ok"),
        ("dhcp.binding.delete", "SN80", "not fou"),
    ]
    assert all(r["actor"] == "workflow" for r in recs)
