"""EtcdStore against a real etcd: KV, CAS under contention, resumable watch, compaction, leases."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from regional_client.core.errors import Conflict, NotFound, StoreError
from regional_client.store.etcd import DELETE, EtcdStore, WatchEvent
from regional_client.store.keys import Keys
from tests.helpers.etcd import EtcdProcess


async def test_put_get_prefix_delete(etcd_store: EtcdStore, keys: Keys) -> None:
    await etcd_store.put(keys.task("SN1"), {"sn": "SN1", "status": "pending"})
    await etcd_store.put(keys.task("SN2"), {"sn": "SN2", "status": "approved"})
    kv = await etcd_store.get(keys.task("SN1"))
    assert kv is not None and kv.value == {"sn": "SN1", "status": "pending"}
    assert kv.mod_revision > 0
    kvs, rev = await etcd_store.get_prefix(keys.machines_prefix)
    assert sorted(k.value["sn"] for k in kvs) == ["SN1", "SN2"]
    assert rev >= kv.mod_revision
    assert await etcd_store.delete(keys.task("SN1"))
    assert await etcd_store.get(keys.task("SN1")) is None
    assert not await etcd_store.delete(keys.task("SN1"))


async def test_invalid_json_is_kept_raw(etcd_store: EtcdStore, keys: Keys) -> None:
    await etcd_store._call(lambda c: c.put(keys.task("BAD").encode(), b"{not json"))
    kv = await etcd_store.get(keys.task("BAD"))
    assert kv is not None and not kv.valid and kv.raw == b"{not json"


async def test_create_only_if_absent(etcd_store: EtcdStore, keys: Keys) -> None:
    assert await etcd_store.create(keys.server("S"), {"n": 1})
    assert not await etcd_store.create(keys.server("S"), {"n": 2})
    kv = await etcd_store.get(keys.server("S"))
    assert kv is not None and kv.value == {"n": 1}


async def test_cas_two_writers_lose_nothing(etcd_store: EtcdStore, keys: Keys) -> None:
    key = keys.server("COUNTER")
    await etcd_store.put(key, {"n": 0, "by": []})
    second = EtcdStore(etcd_store.endpoints and [f"{h}:{p}" for h, p in etcd_store.endpoints])
    await second.connect()
    calls = {"a": 0, "b": 0}

    def bump(who: str):
        def fn(old):
            calls[who] += 1
            old["n"] += 1
            old["by"].append(who)
            return old

        return fn

    async def writer(store: EtcdStore, who: str) -> None:
        for _ in range(40):
            await store.update(key, bump(who))

    try:
        await asyncio.gather(writer(etcd_store, "a"), writer(second, "b"))
    finally:
        await second.close()
    kv = await etcd_store.get(key)
    assert kv is not None
    assert kv.value["n"] == 80
    assert kv.value["by"].count("a") == 40 and kv.value["by"].count("b") == 40
    # Both succeeded in turn; at least one conflict forced a re-read somewhere (or none raced).
    assert calls["a"] >= 40 and calls["b"] >= 40


async def test_update_missing_and_delete(etcd_store: EtcdStore, keys: Keys) -> None:
    with pytest.raises(NotFound):
        await etcd_store.update(keys.server("NOPE"), lambda old: {"x": 1})
    kv = await etcd_store.update(keys.server("NEW"), lambda old: {"x": old}, create=True)
    assert kv is not None and kv.value == {"x": None}
    assert await etcd_store.update(keys.server("NEW"), lambda old: DELETE) is None
    assert await etcd_store.get(keys.server("NEW")) is None


async def test_update_aborts_without_writing(etcd_store: EtcdStore, keys: Keys) -> None:
    await etcd_store.put(keys.server("A"), {"v": 1})
    before = etcd_store.writes

    def refuse(old):
        raise ValueError("no")

    with pytest.raises(ValueError):
        await etcd_store.update(keys.server("A"), refuse)
    assert etcd_store.writes == before
    assert (await etcd_store.get(keys.server("A"))).value == {"v": 1}


async def test_update_gives_up_after_max_retries(etcd_store: EtcdStore, keys: Keys) -> None:
    key = keys.server("HOT")
    await etcd_store.put(key, {"v": 0})
    store = EtcdStore([f"{h}:{p}" for h, p in etcd_store.endpoints], max_cas_retries=3)
    await store.connect()

    def always_conflict(old):
        # Another writer changes the key between our read and our write, every time.
        asyncio.get_running_loop().create_task(etcd_store.put(key, {"v": old["v"] + 100}))
        return {"v": -1}

    async def slow_put_if(key_, value, rev, _orig=store.put_if):
        await asyncio.sleep(0.05)
        return await _orig(key_, value, rev)

    store.put_if = slow_put_if  # type: ignore[method-assign]
    try:
        with pytest.raises(Conflict):
            await store.update(key, always_conflict)
    finally:
        await store.close()
    assert (await etcd_store.get(key)).value["v"] != -1


async def _collect(store: EtcdStore, prefix: str, start: int, out: list[WatchEvent]) -> None:
    async for ev in store.watch_prefix(prefix, start, max_backoff=0.5):
        out.append(ev)


async def _wait_for(pred, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_watch_survives_kill9_and_restart(own_etcd: EtcdProcess, keys: Keys) -> None:
    watcher = EtcdStore([own_etcd.endpoint], dial_timeout=1, request_timeout=2)
    writer = EtcdStore([own_etcd.endpoint], dial_timeout=1, request_timeout=2)
    await watcher.connect()
    await writer.connect()
    rev = await writer.revision()
    events: list[WatchEvent] = []
    task = asyncio.create_task(_collect(watcher, keys.machines_prefix, rev + 1, events))
    try:
        for i in range(3):
            await writer.put(keys.task(f"A{i}"), {"i": i})
        await _wait_for(lambda: len(events) == 3)
        own_etcd.kill9()
        with pytest.raises(StoreError):
            await writer.put(keys.task("LOST"), {"never": True})
        await asyncio.sleep(0.5)
        own_etcd.start()
        # Changes made while the watcher is still reconnecting must all arrive, in order.
        for i in range(5):
            await writer.put(keys.task(f"B{i}"), {"i": i})
        await writer.delete(keys.task("A0"))
        await _wait_for(lambda: len(events) == 9)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await watcher.close()
        await writer.close()
    names = [(e.kind, e.key.rsplit("/", 2)[1]) for e in events]
    assert names == [
        ("put", "A0"), ("put", "A1"), ("put", "A2"),
        ("put", "B0"), ("put", "B1"), ("put", "B2"), ("put", "B3"), ("put", "B4"),
        ("delete", "A0"),
    ]  # fmt: skip
    revs = [e.mod_revision for e in events]
    assert revs == sorted(revs)


async def test_idle_watch_answers_progress_requests_and_stays_open(
    etcd_server: EtcdProcess, keys: Keys
) -> None:
    """A quiet prefix is not a stall: etcd answers the progress requests and the stream stays."""
    from regional_client.store.watch_thread import ThreadWatch

    writer = EtcdStore([etcd_server.endpoint])
    start = await writer.revision() + 1
    watch = ThreadWatch(etcd_server.endpoint, keys.machines_prefix.encode(), start,
                        progress_interval=0.2, stall_timeout=0.5)  # fmt: skip
    try:
        with pytest.raises(TimeoutError):  # ~10 progress rounds, no event, no error
            await asyncio.wait_for(watch.get(), 2.0)
        await writer.put(keys.task("Q1"), {"q": 1})
        batch = await asyncio.wait_for(watch.get(), 5)
        assert [(kind, key) for kind, key, _, _ in batch] == [("put", keys.task("Q1"))]
    finally:
        watch.close()
        assert await watch.wait_closed()
        await writer.close()


async def test_watch_on_a_frozen_etcd_is_declared_stalled_and_resumes(
    own_etcd: EtcdProcess, keys: Keys
) -> None:
    """etcd stops answering but its TCP connection stays up (SIGSTOP): keepalive would notice
    only after ~40 s; the progress probe ends the stream after progress_interval+stall_timeout
    and the watch re-opens from the next revision once etcd is back, losing nothing."""
    import os
    import signal

    from regional_client.store.watch_thread import ThreadWatch

    assert own_etcd.proc is not None
    pid = own_etcd.proc.pid
    writer = EtcdStore([own_etcd.endpoint], dial_timeout=1, request_timeout=2)
    watcher = EtcdStore([own_etcd.endpoint], dial_timeout=1, request_timeout=2,
                        watch_progress_interval=0.5, watch_stall_timeout=1.0)  # fmt: skip
    start = await writer.revision() + 1
    probe = ThreadWatch(own_etcd.endpoint, keys.machines_prefix.encode(), start,
                        progress_interval=0.5, stall_timeout=1.0)  # fmt: skip
    events: list[WatchEvent] = []
    task = asyncio.create_task(_collect(watcher, keys.machines_prefix, start, events))
    try:
        await writer.put(keys.task("F0"), {"i": 0})
        await _wait_for(lambda: len(events) == 1)
        assert len(await asyncio.wait_for(probe.get(), 5)) == 1
        os.kill(pid, signal.SIGSTOP)
        try:
            t0 = asyncio.get_running_loop().time()
            with pytest.raises(StoreError, match="stalled") as err:
                await asyncio.wait_for(probe.get(), 10)
            assert err.value.fields.get("unavailable")
            assert asyncio.get_running_loop().time() - t0 < 5
        finally:
            os.kill(pid, signal.SIGCONT)
        for i in range(1, 4):
            await writer.put(keys.task(f"F{i}"), {"i": i})
        await _wait_for(lambda: len(events) == 4)
    finally:
        os.kill(pid, signal.SIGCONT)
        probe.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await watcher.close()
        await writer.close()
    assert [e.value["i"] for e in events] == [0, 1, 2, 3]


async def test_watch_after_compaction_resyncs(etcd_store: EtcdStore, keys: Keys) -> None:
    start = await etcd_store.revision() + 1
    for i in range(5):
        await etcd_store.put(keys.task(f"C{i}"), {"i": i})
    await etcd_store.delete(keys.task("C4"))
    await etcd_store.compact(await etcd_store.revision())
    events: list[WatchEvent] = []
    task = asyncio.create_task(_collect(etcd_store, keys.machines_prefix, start, events))
    try:
        await _wait_for(lambda: len(events) >= 1)
        await etcd_store.put(keys.task("C9"), {"i": 9})
        await _wait_for(lambda: len(events) >= 2)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert events[0].kind == "resync"
    assert sorted(kv.value["i"] for kv in events[0].snapshot or []) == [0, 1, 2, 3]
    assert events[1].kind == "put" and events[1].value == {"i": 9}


async def test_lease_is_kept_alive_then_revoked(etcd_store: EtcdStore, keys: Keys) -> None:
    lease = await etcd_store.lease(2)
    await etcd_store.put(keys.instance("me"), {"alive": True}, lease=lease)
    await asyncio.sleep(4.5)  # longer than the TTL: only the keep-alive keeps the key
    assert await etcd_store.get(keys.instance("me")) is not None
    assert not lease.lost
    await lease.revoke()
    assert await etcd_store.get(keys.instance("me")) is None


async def test_unreachable_endpoint_is_a_clear_store_error() -> None:
    from tests.helpers.etcd import free_port

    store = EtcdStore([f"127.0.0.1:{free_port()}"], dial_timeout=0.5, request_timeout=0.5)
    with pytest.raises(StoreError, match="etcd unreachable"):
        await store.connect()


async def test_failover_to_second_endpoint(etcd_server: EtcdProcess, keys: Keys) -> None:
    from tests.helpers.etcd import free_port

    store = EtcdStore([f"127.0.0.1:{free_port()}", etcd_server.endpoint], dial_timeout=0.5)
    try:
        await store.put(keys.server("F"), {"ok": 1})
        assert (await store.get(keys.server("F"))).value == {"ok": 1}
    finally:
        await store.close()
