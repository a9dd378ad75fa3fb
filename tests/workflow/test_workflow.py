"""The install workflow against simulated BMCs (ipmitool → IPMI simulator), a switch emulator
over real SSH and scripted agents over real HTTP, with a real etcd."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from regional_client.cli.task import transition
from regional_client.daemon.server import RegionalClient
from regional_client.model import Event
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from tests.helpers.etcd import EtcdProcess
from tests.helpers.regional import make_config, started, wait_until
from tests.workflow.harness import Bench


async def _bench(store: EtcdStore, keys: Keys, n: int, tmp: Path) -> Bench:
    b = Bench(store, keys, n, tmp)
    await b.start()
    return b


@pytest.fixture
async def bench(etcd_store: EtcdStore, keys: Keys, tmp_path: Path) -> AsyncIterator[Bench]:
    b = await _bench(etcd_store, keys, 4, tmp_path)
    yield b
    await b.stop()


async def _rc(bench: Bench, etcd: EtcdProcess, idc: str, tmp: Path, **wf: Any) -> RegionalClient:
    rc = await started(make_config(idc, etcd.endpoint, tmp / "rc", **bench.config(**wf)))
    bench.regional_url = f"http://127.0.0.1:{rc.api_port}"
    return rc


async def _task(store: EtcdStore, keys: Keys, sn: str) -> dict[str, Any]:
    kv = await store.get(keys.task(sn))
    assert kv is not None
    return kv.value


async def _settled(store: EtcdStore, keys: Keys, sns: list[str], timeout: float = 90) -> dict:
    out: dict[str, dict] = {}

    async def done() -> bool:
        for sn in sns:
            out[sn] = await _task(store, keys, sn)
        return all(t["status"] in ("completed", "failed") for t in out.values())

    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await done():
        if loop.time() > end:
            raise AssertionError({sn: (t["status"], t.get("steps")) for sn, t in out.items()})
        await asyncio.sleep(0.2)
    return out


def _assert_clean(bench: Bench, nodes: list) -> None:
    for node in nodes:
        port = bench.port(node)
        assert (port.mode, port.access_vlan) == ("access", 200), node.sn
        st = node.bmc.state
        assert (st.boot_device, st.boot_persistent) == ("disk", True), node.sn


async def test_twenty_tasks_complete_and_everything_is_put_back(
    etcd_server: EtcdProcess, etcd_store: EtcdStore, keys: Keys, idc: str, tmp_path: Path
) -> None:
    bench = await _bench(etcd_store, keys, 20, tmp_path)
    rc = await _rc(bench, etcd_server, idc, tmp_path)
    try:
        await bench.approve_all()
        tasks = await _settled(etcd_store, keys, [n.sn for n in bench.nodes], timeout=180)
        assert {t["status"] for t in tasks.values()} == {"completed"}, {
            sn: t.get("error") for sn, t in tasks.items()
        }
        _assert_clean(bench, bench.nodes)
        for node in bench.nodes:
            t = tasks[node.sn]
            assert [s["status"] for s in t["steps"]] == ["done", "skipped", "skipped", "done",
                                                         "done", "done"]  # fmt: skip
            assert node.bmc.state.power_ons + node.bmc.state.resets == 1, node.bmc.state.history
            assert t["progress"]["percent"] == 100 and t["owner"] == rc.core.instance_id
            assert [h["to"] for h in t["history"]][-2:] == ["installing", "completed"]
        server = (await etcd_store.get(keys.server(bench.nodes[0].sn))).value
        assert server["state"] == "installed"
        # One switch, 20 servers, 40 port changes: applied in batches (fewer config sessions).
        config_sessions = sum(1 for c in bench.switch.commands if c.startswith("conf"))
        assert config_sessions < 40, config_sessions
        # The per-task audit trail holds switch commands, BMC commands, agent calls, steps.
        sn0 = bench.nodes[0].sn
        await asyncio.wait_for(rc.core.trail._queue.join(), 10)  # the writer caught up
        trail = await rc.core.trail.read(sn0)
        actions = [r["action"] for r in trail]
        # Complete and in order: exactly this task's records of the local audit file.
        local = [json.loads(line) for line in rc.core.audit.path.read_text().splitlines()]
        assert actions == [r["action"] for r in local if r.get("sn") == sn0]
        assert "task.claim" in actions and "agent.report" in actions
        assert any(a.startswith("switch") for a in actions), actions
        assert any(a.startswith("bmc") for a in actions), actions
        text = str(trail)
        assert "bmc-secret-pw" not in text and "switch-secret-pw" not in text
        # Every log line about one of these servers names it by serial and MAC.
        macs = {n.sn: n.mac for n in bench.nodes}
        lines = [json.loads(x) for x in (tmp_path / "rc" / "rc.log").read_text().splitlines()]
        about = [r for r in lines if r.get("sn") in macs]
        assert len(about) > 20 * 5
        assert all(r["mac"] == macs[r["sn"]] for r in about), [
            r for r in about if r["mac"] != macs[r["sn"]]
        ][:3]
        metrics = rc.core.metrics.render().decode()
        assert f'regional_client_step_seconds_count{{idc="{idc}",step="power"}} 20.0' in metrics
    finally:
        await rc.stop()
        await bench.stop()


async def test_switch_refusal_fails_then_retry_completes(
    bench: Bench, etcd_server: EtcdProcess, etcd_store: EtcdStore, keys: Keys, idc: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    node = bench.nodes[0]
    bench.switch.refuse = [r"switchport access vlan 100"]
    rc = await _rc(bench, etcd_server, idc, tmp_path)
    try:
        await bench.approve_all([node])
        t = (await _settled(etcd_store, keys, [node.sn]))[node.sn]
        assert t["status"] == "failed"
        assert t["error"].startswith("step switch:"), t["error"]
        assert (bench.port(node).mode, bench.port(node).access_vlan) == ("access", 200)
        assert node.bmc.state.power_ons + node.bmc.state.resets == 0
        bench.switch.refuse = []
        await transition(etcd_store, keys, node.sn, Event.RETRY, "test")
        t = (await _settled(etcd_store, keys, [node.sn]))[node.sn]
        assert t["status"] == "completed", t.get("error")
        _assert_clean(bench, [node])
    finally:
        await rc.stop()


async def test_cleanup_failure_then_retry_redoes_cleanup_only(
    bench: Bench, etcd_server: EtcdProcess, etcd_store: EtcdStore, keys: Keys, idc: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """The install went through but the switch refused the port's way back: the task fails
    in cleanup with the port left on the install VLAN (said in the error); after the fix a
    retry runs cleanup only — no second boot, no second power action, no second install."""
    node = bench.nodes[0]
    bench.switch.refuse = [r"switchport access vlan 200"]
    rc = await _rc(bench, etcd_server, idc, tmp_path)
    try:
        await bench.approve_all([node])
        t = (await _settled(etcd_store, keys, [node.sn]))[node.sn]
        assert t["status"] == "failed"
        assert t["error"].startswith("step cleanup:"), t["error"]
        assert "rollback incomplete" in t["error"]
        assert bench.port(node).access_vlan == 100  # still on the install VLAN, as said
        assert t["workflow_state"].get("switch", {}).get("previous"), t["workflow_state"]
        boots, power = node.boots, node.bmc.state.power_ons + node.bmc.state.resets
        assert (boots, power) == (1, 1)
        bench.switch.refuse = []
        await transition(etcd_store, keys, node.sn, Event.RETRY, "test")
        t = (await _settled(etcd_store, keys, [node.sn]))[node.sn]
        assert t["status"] == "completed", t.get("error")
        assert any("cleanup only" in (h.get("reason") or "") for h in t["history"])
        assert (node.boots, node.bmc.state.power_ons + node.bmc.state.resets) == (boots, power)
        assert all(s["status"] in ("done", "skipped") for s in t["steps"]), t["steps"]
        _assert_clean(bench, [node])
        assert (bench.port(node).description) == "prod"  # the remembered config, not a default
    finally:
        await rc.stop()


async def test_bmc_timeout_rolls_back_switch(
    bench: Bench, etcd_server: EtcdProcess, etcd_store: EtcdStore, keys: Keys, idc: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    node = bench.nodes[1]
    node.bmc.state.stall = True
    rc = await _rc(bench, etcd_server, idc, tmp_path, power_timeout="15s", step_retries=0)
    try:
        await bench.approve_all([node])
        t = (await _settled(etcd_store, keys, [node.sn]))[node.sn]
        assert t["status"] == "failed"
        assert t["error"].startswith("step power:") and "127.0.0.1" in t["error"], t["error"]
        assert (bench.port(node).mode, bench.port(node).access_vlan) == ("access", 200)
        assert t.get("workflow_state") in (None, {}) or "rollback incomplete" in t["error"]
        node.bmc.state.stall = False
        await transition(etcd_store, keys, node.sn, Event.RETRY, "test")
        t = (await _settled(etcd_store, keys, [node.sn]))[node.sn]
        assert t["status"] == "completed", t.get("error")
        _assert_clean(bench, [node])
    finally:
        await rc.stop()


async def test_silent_agent_gets_one_more_power_cycle_then_fails(
    bench: Bench, etcd_server: EtcdProcess, etcd_store: EtcdStore, keys: Keys, idc: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    node = bench.nodes[2]
    node.silent = True
    rc = await _rc(bench, etcd_server, idc, tmp_path, agent_timeout="3s")
    try:
        await bench.approve_all([node])
        t = (await _settled(etcd_store, keys, [node.sn]))[node.sn]
        assert t["status"] == "failed"
        assert t["error"].startswith("step agent: agent did not report"), t["error"]
        st = node.bmc.state
        assert st.power_ons + st.resets == 2, st.history  # the first boot + exactly one more
        _assert_clean(bench, [node])
    finally:
        await rc.stop()


async def test_boot_that_stalls_after_dhcp_is_power_cycled_before_agent_timeout(
    bench: Bench, etcd_server: EtcdProcess, etcd_store: EtcdStore, keys: Keys, idc: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """The firmware gets a lease from our DHCP, then gives up (no agent). The regional client
    saw the boot start and then nothing: after boot_stall_timeout (2 s), not agent_timeout
    (300 s), it power-cycles once; the second boot installs."""
    import socket

    from regional_rack.rack import free_port
    from tests.workflow.test_crash import _dhcp_config

    stalled, never = bench.nodes[0], bench.nodes[1]
    stalled.fail_boots = 1
    never.fail_boots = 2  # stalls again after the extra power cycle: the step fails
    dhcp_port = free_port(socket.SOCK_DGRAM)
    relay_port = await bench.enable_dhcp(("127.0.0.1", dhcp_port))
    rc = await started(make_config(
        idc, etcd_server.endpoint, tmp_path / "rc", dhcp=_dhcp_config(dhcp_port, relay_port),
        **bench.config(agent_timeout="300s", boot_stall_timeout="2s"),
    ))  # fmt: skip
    bench.regional_url = f"http://127.0.0.1:{rc.api_port}"
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    try:
        await bench.approve_all([stalled, never])
        out = await _settled(etcd_store, keys, [stalled.sn, never.sn], timeout=120)
        assert loop.time() - t0 < 120  # far below the 300 s agent timeout
        ok, bad = out[stalled.sn], out[never.sn]
        seen = {n.sn: (n.boots, n.leases, n.bmc.state.history) for n in (stalled, never)}
        assert ok["status"] == "completed", (ok.get("error"), ok.get("workflow_state"), seen)
        power = ok["workflow_state"]["power"]
        assert power["recycle_reason"] == "boot_stalled" and power["recycled"]
        assert stalled.boots == 2 and len(stalled.leases) == 2
        st = stalled.bmc.state
        assert st.power_ons + st.resets == 2, st.history
        assert bad["status"] == "failed"
        assert "network-booted, then stayed quiet" in bad["error"], bad["error"]
        assert "after a second power cycle" in bad["error"], bad["error"]
        assert never.boots == 2
        _assert_clean(bench, [stalled, never])
    finally:
        await rc.stop()


async def test_failed_operation_fails_task_and_rolls_back(
    bench: Bench, etcd_server: EtcdProcess, etcd_store: EtcdStore, keys: Keys, idc: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    node = bench.nodes[3]
    node.fail_operation = "os_install"
    rc = await _rc(bench, etcd_server, idc, tmp_path)
    try:
        await bench.approve_all([node])
        t = (await _settled(etcd_store, keys, [node.sn]))[node.sn]
        assert t["status"] == "failed"
        assert "os_install" in t["error"] and "noop installer asked to fail" in t["error"]
        await wait_until(lambda: bench.port(node).access_vlan == 200, timeout=20)
        await wait_until(lambda: node.bmc.state.boot_device == "disk", timeout=20)
        _assert_clean(bench, [node])
    finally:
        await rc.stop()


async def test_delete_during_install_cleans_up(
    bench: Bench, etcd_server: EtcdProcess, etcd_store: EtcdStore, keys: Keys, idc: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    node = bench.nodes[0]
    node.silent = True  # stays in the agent step until we delete it
    rc = await _rc(bench, etcd_server, idc, tmp_path, agent_timeout="60s")
    try:
        await bench.approve_all([node])

        async def in_agent_step() -> bool:
            t = await _task(etcd_store, keys, node.sn)
            return any(
                s["name"] == "agent" and s["status"] == "running" for s in t.get("steps", [])
            )

        for _ in range(200):
            if await in_agent_step():
                break
            await asyncio.sleep(0.1)
        assert bench.port(node).access_vlan == 100
        await etcd_store.delete(keys.task(node.sn))
        await wait_until(lambda: bench.port(node).access_vlan == 200, timeout=20)
        await wait_until(lambda: node.bmc.state.boot_device == "disk", timeout=20)
        _assert_clean(bench, [node])
    finally:
        await rc.stop()
