"""Crash safety: SIGKILL the regional client at every step boundary and in the middle of every
step, restart it, and every task still completes with exactly one power action per attempt and
no address handed to two servers (the servers boot with relayed DHCP against it); two
instances on one IDC never run the same task; a dead instance's tasks are taken over; SIGTERM
is bounded and leaves every task resumable."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path
from typing import Any

import pytest

from regional_client.store.etcd import EtcdStore, WatchEvent
from regional_client.store.keys import Keys
from regional_client.workflow.steps import STEP_NAMES
from regional_rack.rack import free_port
from tests.helpers.etcd import EtcdProcess
from tests.helpers.regional import RcProcess
from tests.workflow.harness import Bench


def _dhcp_config(port: int, relay_port: int) -> dict[str, Any]:
    return {
        "enabled": True, "interface": None, "listen_addr": "127.0.0.1", "port": port,
        "relay_reply_port": relay_port, "server_id": "127.0.0.1", "tftp_server": "127.0.0.1",
        "relay_subnets": [{"subnet": "127.0.0.0/8", "gateway": "127.0.0.1",
                           "ip_range": {"start": "127.100.8.10", "end": "127.100.8.250"}}],
    }  # fmt: skip


def _rc_config(
    bench: Bench, idc: str, etcd: EtcdProcess, state: Path, **workflow: Any
) -> dict[str, Any]:
    cfg = bench.config(agent_timeout="6s", **workflow)
    cfg.update({
        "idc": idc, "state_dir": str(state),
        "api": {"listen_addr": "127.0.0.1", "admin": {"port": 0}},
        "etcd": {"endpoints": [etcd.endpoint]}, "dhcp": {"enabled": False},
        "tftp": {"enabled": False}, "http_boot": {"enabled": False},
        "logging": {"level": "info", "file": str(state / "rc.log"), "stderr": False},
    })  # fmt: skip
    return cfg


async def _wait_status(store: EtcdStore, keys: Keys, sns: list[str], timeout: float) -> dict:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        tasks = {sn: (await store.get(keys.task(sn))).value for sn in sns}
        if all(t["status"] in ("completed", "failed") for t in tasks.values()):
            return tasks
        if loop.time() > end:
            raise AssertionError({sn: (t["status"], t.get("steps")) for sn, t in tasks.items()})
        await asyncio.sleep(0.2)


async def _kill_when(store: EtcdStore, keys: Keys, sn: str, step: str, status: str,
                     rc: RcProcess) -> None:  # fmt: skip
    """SIGKILL the regional client the moment ``sn``'s ``step`` reaches ``status``."""
    start = await store.revision()

    def hit(ev: WatchEvent) -> bool:
        if ev.kind != "put" or not ev.key.endswith(f"/{sn}/task"):
            return False
        wanted = {status, "skipped"} if status == "done" else {status}  # pxe/dhcp: no device
        return any(s.get("name") == step and s.get("status") in wanted
                   for s in (ev.value or {}).get("steps", []))  # fmt: skip

    kv = await store.get(keys.task(sn))
    if kv is not None and hit(WatchEvent("put", kv.key, kv.value, kv.mod_revision)):
        rc.kill9()
        return
    async for ev in store.watch_prefix(keys.machines_prefix, start + 1):
        if hit(ev):
            rc.kill9()
            return


def _power_actions_ok(st: Any, power: dict[str, Any]) -> bool:
    """One power action per recorded attempt, never two. The first attempt always happened
    (the task completed); the agent-timeout power cycle is recorded before it is sent, so a
    crash or stop in between leaves it recorded but not sent (never re-sent on resume)."""
    actions = st.power_ons + st.resets
    return 1 <= actions <= (2 if power.get("recycled") else 1)


def _stop_all(*rcs: RcProcess) -> None:
    for rc in rcs:
        with contextlib.suppress(Exception):
            rc.stop()


POINTS = [(step, when) for step in STEP_NAMES[:-1] for when in ("running", "done")]


@pytest.mark.slow
async def test_sigkill_at_every_step_boundary_and_midstep(
    etcd_server: EtcdProcess, etcd_store: EtcdStore, keys: Keys, idc: str, tmp_path: Path
) -> None:
    bench = Bench(etcd_store, keys, len(POINTS), tmp_path)
    bench.switch.command_delay = 0.05  # a CLI that takes its time: "mid-step" is observable
    await bench.start()
    dhcp_port = free_port(socket.SOCK_DGRAM)
    cfg = _rc_config(bench, idc, etcd_server, tmp_path / "state")
    cfg["dhcp"] = _dhcp_config(dhcp_port, await bench.enable_dhcp(("127.0.0.1", dhcp_port)))
    rc = RcProcess(cfg, tmp_path / "rc")
    bench.regional_url = rc.url
    try:
        await rc.start()
        for node, (step, when) in zip(bench.nodes, POINTS, strict=True):
            killer = asyncio.create_task(_kill_when(etcd_store, keys, node.sn, step, when, rc))
            await bench.approve_all([node])
            await asyncio.wait_for(killer, 60)
            assert rc.proc.poll() is not None, f"not killed at {step}/{when}"
            await rc.start()
            t = (await _wait_status(etcd_store, keys, [node.sn], 90))[node.sn]
            assert t["status"] == "completed", (step, when, t.get("error"), t.get("steps"))
            power = t.get("workflow_state", {}).get("power", {})
            st = node.bmc.state
            assert _power_actions_ok(st, power), (step, when, st.history, power)
            assert (bench.port(node).mode, bench.port(node).access_vlan) == ("access", 200)
            assert (st.boot_device, st.boot_persistent) == ("disk", True)
            assert node.leases, (step, when, "the server never got an address")
            if node.static_ip:
                assert set(node.leases) == {node.static_ip}, (step, when, node.leases)
        assert rc.starts == len(POINTS) + 1
        # No address was ever handed to two servers, across all those crashes.
        holders: dict[str, set[str]] = {}
        for node in bench.nodes:
            for ip in node.leases:
                holders.setdefault(ip, set()).add(node.mac)
        assert all(len(macs) == 1 for macs in holders.values()), holders
        # Cleanup removed every binding; the pool leases may stay until they expire.
        kvs, _ = await etcd_store.get_prefix(keys.bindings_prefix)
        assert not kvs, [kv.key for kv in kvs]
    finally:
        rc.stop()
        await bench.stop()


@pytest.mark.slow
async def test_two_instances_never_run_the_same_task(
    etcd_server: EtcdProcess, etcd_store: EtcdStore, keys: Keys, idc: str, tmp_path: Path
) -> None:
    bench = Bench(etcd_store, keys, 10, tmp_path)
    await bench.start()
    a = RcProcess(_rc_config(bench, idc, etcd_server, tmp_path / "a"), tmp_path / "rc-a")
    b = RcProcess(_rc_config(bench, idc, etcd_server, tmp_path / "b"), tmp_path / "rc-b")
    bench.regional_url = a.url  # agents may talk to either: both serve the same tasks
    try:
        await asyncio.gather(a.start(), b.start())
        await bench.approve_all()
        tasks = await _wait_status(etcd_store, keys, [n.sn for n in bench.nodes], 120)
        owners = set()
        for node in bench.nodes:
            t = tasks[node.sn]
            assert t["status"] == "completed", t.get("error")
            claims = [h for h in t["history"] if h["to"] == "installing"]
            assert len(claims) == 1, claims
            owners.add(claims[0]["by"])
            st = node.bmc.state
            assert st.power_ons + st.resets == 1, st.history
        assert len(owners) >= 1
    finally:
        _stop_all(a, b)
        await bench.stop()


@pytest.mark.slow
async def test_dead_instance_tasks_are_taken_over(
    etcd_server: EtcdProcess, etcd_store: EtcdStore, keys: Keys, idc: str, tmp_path: Path
) -> None:
    """A dies mid-install (SIGKILL, its heartbeat expires); B adopts its tasks and finishes
    them, never repeating a power action A had already taken."""
    bench = Bench(etcd_store, keys, 2, tmp_path)
    await bench.start()
    a = RcProcess(
        _rc_config(bench, idc, etcd_server, tmp_path / "a", heartbeat_ttl="5s"), tmp_path / "rc-a"
    )
    b = RcProcess(
        _rc_config(bench, idc, etcd_server, tmp_path / "b", heartbeat_ttl="5s"), tmp_path / "rc-b"
    )
    bench.regional_url = a.url
    try:
        await a.start()
        killer = asyncio.create_task(
            _kill_when(etcd_store, keys, bench.nodes[0].sn, "agent", "running", a)
        )
        await bench.approve_all()
        await asyncio.wait_for(killer, 60)
        a_id = (await etcd_store.get(keys.task(bench.nodes[0].sn))).value["owner"]
        bench.regional_url = b.url  # the agents' next boot finds the surviving instance
        await b.start()
        tasks = await _wait_status(etcd_store, keys, [n.sn for n in bench.nodes], 120)
        for node in bench.nodes:
            t = tasks[node.sn]
            assert t["status"] == "completed", (t.get("error"), t.get("steps"))
            assert t["owner"] != a_id
            if any(h.get("by") == a_id for h in t["history"]):  # claimed by A: adopted by B
                assert any(h.get("reason") == f"taken over from {a_id}" for h in t["history"])
            power = t.get("workflow_state", {}).get("power", {})
            st = node.bmc.state
            assert _power_actions_ok(st, power), st.history
        first = tasks[bench.nodes[0].sn]
        assert any(h.get("reason") == f"taken over from {a_id}" for h in first["history"])
    finally:
        _stop_all(a, b)
        await bench.stop()


@pytest.mark.slow
async def test_sigterm_during_a_long_switch_batch_is_bounded(
    etcd_server: EtcdProcess, etcd_store: EtcdStore, keys: Keys, idc: str, tmp_path: Path
) -> None:
    """A switch answering slowly keeps a batch busy; SIGTERM still ends the process within the
    workflow's and the switch's graces (the batch is abandoned), and after a restart everything
    completes with every port back on the production VLAN."""
    bench = Bench(etcd_store, keys, 6, tmp_path)
    bench.switch.command_delay = 0.5  # ~6 commands a port: a batch of 6 ports takes ~20 s
    await bench.start()
    cfg = _rc_config(bench, idc, etcd_server, tmp_path / "state")
    cfg["switch"]["timeout"] = "3s"
    rc = RcProcess(cfg, tmp_path / "rc")
    bench.regional_url = rc.url
    try:
        await rc.start()
        await bench.approve_all()
        loop = asyncio.get_running_loop()
        end = loop.time() + 30
        while bench.switch.concurrent_sessions == 0 or len(bench.switch.commands) < 3:
            assert loop.time() < end, "no switch session opened"
            await asyncio.sleep(0.05)
        t0 = loop.time()
        # SIGTERM in the middle of the batch; the switch keeps answering (slowly) meanwhile.
        await asyncio.to_thread(rc.stop)
        stopped_after = loop.time() - t0
        assert rc.proc.returncode == 0
        # workflow grace (10 s: in-flight steps may finish) + switch grace (2 x 3 s) + margin
        assert stopped_after < 10 + 6 + 6, f"took {stopped_after:.1f}s to stop"
        log = (tmp_path / "state" / "rc.log").read_text()
        assert '"action": "switch_batch_abandoned"' in log
        bench.switch.command_delay = 0
        await rc.start()
        tasks = await _wait_status(etcd_store, keys, [n.sn for n in bench.nodes], 120)
        for node in bench.nodes:
            t = tasks[node.sn]
            assert t["status"] == "completed", (t.get("error"), t.get("steps"))
            assert (bench.port(node).mode, bench.port(node).access_vlan) == ("access", 200)
    finally:
        rc.stop()
        await bench.stop()


@pytest.mark.slow
async def test_sigterm_leaves_tasks_resumable(
    etcd_server: EtcdProcess, etcd_store: EtcdStore, keys: Keys, idc: str, tmp_path: Path
) -> None:
    bench = Bench(etcd_store, keys, 2, tmp_path)
    await bench.start()
    rc = RcProcess(_rc_config(bench, idc, etcd_server, tmp_path / "state"), tmp_path / "rc")
    bench.regional_url = rc.url
    slow = {"os_install": {"installer": "noop", "steps": 6, "delay": 0.5}}
    try:
        await rc.start()
        for node in bench.nodes:
            await etcd_store.put(keys.task(node.sn), bench.task(node, operation_params=slow))
        await _kill_when(etcd_store, keys, bench.nodes[0].sn, "agent", "running", rc)
        # _kill_when SIGKILLs; do the graceful variant on the restarted process instead.
        await rc.start()
        await asyncio.sleep(1.0)
        t0 = asyncio.get_running_loop().time()
        rc.stop()  # SIGTERM
        assert rc.proc.returncode == 0
        assert asyncio.get_running_loop().time() - t0 < 20
        for node in bench.nodes:
            t = (await etcd_store.get(keys.task(node.sn))).value
            assert t["status"] in ("installing", "completed"), t.get("error")
        await rc.start()
        tasks = await _wait_status(etcd_store, keys, [n.sn for n in bench.nodes], 90)
        for node in bench.nodes:
            assert tasks[node.sn]["status"] == "completed", tasks[node.sn].get("error")
            st = node.bmc.state
            power = tasks[node.sn].get("workflow_state", {}).get("power", {})
            assert _power_actions_ok(st, power), (st.history, power)
        log = (tmp_path / "state" / "rc.log").read_text()
        assert '"action": "shutdown"' in log
    finally:
        rc.stop()
        await bench.stop()
