"""The Python agent's operation loop against the real regional client and a real etcd."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from regional_client.agent import inventory
from regional_client.agent.client import AgentApiError, AgentClient, Backoff
from regional_client.agent.loop import LoopConfig, Outcome, run_loop
from regional_client.agent.operations import OpContext
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from tests.agent.conftest import MAC, Regional
from tests.helpers.agent_session import claim
from tests.helpers.etcd import EtcdProcess
from tests.helpers.regional import wait_until

FAST = Backoff(initial=0.05, maximum=0.2)


async def _stored(store: EtcdStore, key: str) -> dict[str, Any]:
    kv = await store.get(key)
    assert kv is not None
    return kv.value


def _loop_cfg(tmp_path: Path, **kw: Any) -> LoopConfig:
    marker = tmp_path / "rebooted"
    return LoopConfig(
        reboot_cmd=f"{sys.executable} -c \"open('{marker}', 'w').write('x')\"",
        idle_interval=0.05,
        failure_pause=0.01,
        **kw,
    )


async def test_agent_drives_task_to_reboot(
    regional: Regional, etcd_store: EtcdStore, keys: Keys, tmp_path: Path
) -> None:
    sn = "SN-AGENT-1"
    scripts = [
        {"name": "raid", "interpreter": "/bin/sh", "content": "echo raid; echo err >&2"},
        {"name": "bios", "interpreter": sys.executable, "content": "print('bios', 6*7)"},
    ]
    await regional.add_task(etcd_store, keys, sn, hardware_scripts=scripts)
    hardware = inventory.collect(with_bmc=False)
    async with AgentClient(regional.url, sn, backoff=FAST) as client:
        outcome = await run_loop(client, hardware, MAC, OpContext(client), _loop_cfg(tmp_path))
    assert outcome is Outcome.REBOOT
    assert (tmp_path / "rebooted").read_text() == "x"
    task = await _stored(etcd_store, keys.task(sn))
    assert task["results"]["hardware_config"]["status"] == "done"
    assert task["results"]["hardware_config"]["message"] == "2 scripts ok"
    assert task["results"]["hardware_config"]["exit_code"] == 0
    assert task["results"]["os_install"]["status"] == "done"
    assert task["agent"]["reported_at"]
    server = await _stored(etcd_store, keys.server(sn))
    assert server["state"] == "installing" and server["macs"] == [MAC]
    assert server["hardware"]["cpu"]["count"] == hardware["cpu"]["count"]
    assert server["hardware"]["memory"]["total_bytes"] == hardware["memory"]["total_bytes"]
    progress = (await _stored(etcd_store, keys.task(sn)))["progress"]
    assert progress["operation"] in ("hardware_config", "os_install")


async def test_failing_script_fails_task_and_agent_goes_idle(
    regional: Regional, etcd_store: EtcdStore, keys: Keys, tmp_path: Path
) -> None:
    sn = "SN-AGENT-FAIL"
    scripts = [
        {"name": "ok", "interpreter": "/bin/sh", "content": "echo fine"},
        {"name": "raid", "interpreter": "/bin/sh", "content": "echo no disks; exit 3"},
        {"name": "never", "interpreter": "/bin/sh", "content": "touch never-ran"},
    ]
    await regional.add_task(etcd_store, keys, sn, hardware_scripts=scripts)
    async with AgentClient(regional.url, sn, backoff=FAST) as client:
        ctx = OpContext(client, workdir=tmp_path)
        outcome = await run_loop(client, {}, MAC, ctx, _loop_cfg(tmp_path, once=True))
    assert outcome is Outcome.NOT_IN_QUEUE
    assert not (tmp_path / "rebooted").exists()
    task = await _stored(etcd_store, keys.task(sn))
    assert task["status"] == "failed"
    res = task["results"]["hardware_config"]
    assert res["status"] == "failed" and res["exit_code"] == 3
    assert res["message"] == "script raid failed with exit code 3"
    assert "operation hardware_config failed" in task["error"]
    assert "os_install" not in task.get("results", {})


async def test_agent_waits_out_a_regional_client_restart(
    regional: Regional, etcd_store: EtcdStore, keys: Keys, tmp_path: Path
) -> None:
    sn = "SN-AGENT-RESTART"
    await regional.add_task(etcd_store, keys, sn)
    await regional.stop()
    retries: list[float] = []

    async def sleep(delay: float) -> None:
        retries.append(delay)
        await asyncio.sleep(delay)

    async with AgentClient(regional.url, sn, backoff=FAST, sleep=sleep) as client:
        agent = asyncio.create_task(
            run_loop(client, {}, MAC, OpContext(client), _loop_cfg(tmp_path))
        )
        await wait_until(lambda: len(retries) >= 3)
        assert not agent.done()
        await regional.start()
        outcome = await asyncio.wait_for(agent, timeout=60)
    assert outcome is Outcome.REBOOT
    assert all(0 < d <= FAST.maximum for d in retries)
    task = await _stored(etcd_store, keys.task(sn))
    assert {k: v["status"] for k, v in task["results"].items()} == {
        "hardware_config": "done",
        "os_install": "done",
    }


async def test_second_claim_for_a_boot_is_refused(
    regional: Regional, etcd_store: EtcdStore, keys: Keys, tmp_path: Path
) -> None:
    """Someone else's report claimed this boot's token first: the real agent's report is
    refused (409) and ends the agent (exit 3), with nothing leaked in the error."""
    sn = "SN-AGENT-SECOND"
    await regional.add_task(etcd_store, keys, sn)
    first = await claim(regional.url, sn, MAC)
    stolen = first.json()["token"]
    async with AgentClient(regional.url, sn, backoff=FAST) as client:
        try:
            await run_loop(client, {}, MAC, OpContext(client), _loop_cfg(tmp_path))
        except AgentApiError as e:
            assert e.status == 409 and "already issued" in str(e) and stolen not in str(e)
        else:
            raise AssertionError("a second claim must be refused")
    task = await _stored(etcd_store, keys.task(sn))
    assert task["agent_session"]["refused"] == 1


async def test_discovery_boot_without_token_reports_then_idles(
    regional: Regional, etcd_store: EtcdStore, keys: Keys, tmp_path: Path
) -> None:
    sn = "SN-DISCOVERED"
    async with AgentClient(regional.url, sn, backoff=FAST) as client:
        outcome = await run_loop(
            client, {"cpu": {"count": 4}}, MAC, OpContext(client), _loop_cfg(tmp_path, once=True)
        )
    assert outcome is Outcome.NOT_IN_QUEUE
    server = await _stored(etcd_store, keys.server(sn))
    assert server["state"] == "discovered" and server["hardware"] == {"cpu": {"count": 4}}


async def test_task_deleted_mid_operation_sends_agent_idle(
    regional: Regional, etcd_store: EtcdStore, keys: Keys, tmp_path: Path
) -> None:
    """The task disappears while a hardware script runs: the agent goes idle, no crash."""
    sn = "SN-AGENT-DELETED"
    gate = tmp_path / "gate"
    scripts = [{"name": "wait", "interpreter": "/bin/sh",
                "content": f"while [ ! -e {gate} ]; do sleep 0.05; done"}]  # fmt: skip
    await regional.add_task(etcd_store, keys, sn, hardware_scripts=scripts)
    async with AgentClient(regional.url, sn, backoff=FAST) as client:
        agent = asyncio.create_task(
            run_loop(client, {}, MAC, OpContext(client), _loop_cfg(tmp_path, once=True))
        )
        assert regional.rc is not None and regional.rc.services is not None
        cache = regional.rc.core.cache
        await wait_until(lambda: cache.get_task(sn).progress.operation == "hardware_config")
        await etcd_store.delete(keys.task(sn))
        await wait_until(lambda: cache.get_task(sn) is None)
        gate.write_text("go")
        outcome = await asyncio.wait_for(agent, timeout=30)
    assert outcome is Outcome.NOT_IN_QUEUE
    assert not (tmp_path / "rebooted").exists()


async def test_agent_rides_out_an_etcd_outage(
    own_etcd: EtcdProcess, idc: str, tmp_path: Path
) -> None:
    """etcd dies before the agent reports: the regional client answers 503, the agent backs
    off and retries, and finishes once etcd is back."""
    sn = "SN-AGENT-ETCD-DOWN"
    regional = Regional(idc, own_etcd, tmp_path / "rc")
    await regional.start()
    store = EtcdStore([own_etcd.endpoint], dial_timeout=3, request_timeout=5)
    await store.connect()
    try:
        await regional.add_task(store, Keys(idc), sn)
        own_etcd.kill9()
        retries: list[float] = []

        async def sleep(delay: float) -> None:
            retries.append(delay)
            await asyncio.sleep(delay)

        async with AgentClient(regional.url, sn, backoff=FAST, sleep=sleep) as client:
            agent = asyncio.create_task(
                run_loop(client, {}, MAC, OpContext(client), _loop_cfg(tmp_path))
            )
            await wait_until(lambda: retries, timeout=60)
            assert not agent.done()
            await asyncio.to_thread(own_etcd.start)
            outcome = await asyncio.wait_for(agent, timeout=120)
        assert outcome is Outcome.REBOOT
        kv = await store.get(Keys(idc).task(sn))
        assert kv is not None
        assert {k: v["status"] for k, v in kv.value["results"].items()} == {
            "hardware_config": "done",
            "os_install": "done",
        }
    finally:
        await store.close()
        await regional.stop()
