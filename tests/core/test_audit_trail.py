"""The per-server audit trail in a real etcd: written in order, read back, pruned by age and
count without touching anything else."""

from __future__ import annotations

import asyncio

from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from regional_client.tasks.audit_trail import AuditTrail

DAY = 86400 * 10**9
NOW = 1_800_000_000 * 10**9


def _key(keys: Keys, sn: str, ns: int, seq: int = 0) -> str:
    return f"{keys.audit(sn)}{ns:020d}-{seq:06d}"


async def _trail(store: EtcdStore, keys: Keys, sn: str) -> list[int]:
    kvs, _ = await store.get_prefix(keys.audit(sn))
    return [kv.value["i"] for kv in sorted(kvs, key=lambda kv: kv.key)]


async def test_prune_by_age_and_count_across_pages(etcd_store: EtcdStore, keys: Keys) -> None:
    puts: dict[str, dict[str, int]] = {}
    # OLD: 5 records 100 days old, then 3 from today
    for i in range(8):
        puts[_key(keys, "OLD", NOW - (100 if i < 5 else 0) * DAY + i, i)] = {"i": i}
    # MANY: 10 recent records, more than max_records
    for i in range(10):
        puts[_key(keys, "MANY", NOW - DAY + i, i)] = {"i": i}
    # GONE: everything older than max_age
    for i in range(4):
        puts[_key(keys, "GONE", NOW - 200 * DAY + i, i)] = {"i": i}
    # KEEP: within both limits
    for i in range(3):
        puts[_key(keys, "KEEP", NOW - 89 * DAY + i, i)] = {"i": i}
    await etcd_store.put_many(puts)
    # Neighbours that must survive: a serial that extends another one, a key that is not a
    # record, and the task itself.
    await etcd_store.put(_key(keys, "MANY2", NOW - 300 * DAY), {"i": 0})
    await etcd_store.put(f"{keys.audit_prefix}stray", {"i": -1})
    await etcd_store.put(keys.task("OLD"), {"sn": "OLD"})

    trail = AuditTrail(etcd_store, keys, max_age_days=90, max_records=4)
    trail.max_age_days = 250  # of the old ones only MANY2 (300 days) is beyond that
    r = await trail.prune(now_ns=NOW, page=3)  # pages split servers: the scan stitches them
    assert (r.servers, r.records, r.scanned) == (3, 4 + 6 + 1, 27)
    assert await _trail(etcd_store, keys, "OLD") == [4, 5, 6, 7]  # the newest 4
    assert await _trail(etcd_store, keys, "MANY") == [6, 7, 8, 9]
    assert await _trail(etcd_store, keys, "MANY2") == []
    assert await _trail(etcd_store, keys, "GONE") == [0, 1, 2, 3]  # 200 days < 250

    trail.max_age_days = 90
    r = await trail.prune(now_ns=NOW, page=3)
    assert (r.servers, r.records) == (2, 1 + 4)  # OLD's last old one, all of GONE
    assert await _trail(etcd_store, keys, "OLD") == [5, 6, 7]
    assert await _trail(etcd_store, keys, "GONE") == []
    assert await _trail(etcd_store, keys, "KEEP") == [0, 1, 2]
    assert await _trail(etcd_store, keys, "MANY") == [6, 7, 8, 9]
    assert (await etcd_store.get(f"{keys.audit_prefix}stray")).value == {"i": -1}
    assert await etcd_store.get(keys.task("OLD")) is not None

    # Nothing left to do: a second pass deletes nothing.
    again = await trail.prune(now_ns=NOW, page=3)
    assert (again.servers, again.records) == (0, 0)


async def test_zero_limits_keep_everything(etcd_store: EtcdStore, keys: Keys) -> None:
    await etcd_store.put_many(
        {_key(keys, "Z", NOW - 1000 * DAY + i, i): {"i": i} for i in range(5)}
    )
    trail = AuditTrail(etcd_store, keys, max_age_days=0, max_records=0)
    r = await trail.prune(now_ns=NOW)
    assert r.records == 0 and await _trail(etcd_store, keys, "Z") == [0, 1, 2, 3, 4]


async def test_running_trail_writes_reads_and_prunes_in_background(
    etcd_store: EtcdStore, keys: Keys
) -> None:
    trail = AuditTrail(etcd_store, keys, max_records=3, prune_interval=0.2)
    await trail.start()
    try:
        for i in range(6):
            trail.sink({"sn": "BG", "action": "step", "i": i})
        trail.sink({"action": "no serial: not filed"})
        trail.sink({"sn": "../bad", "action": "invalid serial: not filed"})
        loop = asyncio.get_running_loop()
        end = loop.time() + 10
        while [r["i"] for r in await trail.read("BG")] != [3, 4, 5]:
            assert loop.time() < end, await trail.read("BG")
            await asyncio.sleep(0.1)
    finally:
        await trail.stop()


def test_limits_come_from_logging_config(tmp_path) -> None:
    import pytest
    import yaml

    from regional_client.config import load_config
    from regional_client.core.errors import ConfigError

    f = tmp_path / "rc.yaml"
    f.write_text(yaml.safe_dump({"idc": "dc1", "logging": {"audit_trail_max_age": 30}}))
    cfg = load_config(f)
    assert (cfg.logging.audit_trail_max_age, cfg.logging.audit_trail_max_records) == (30, 2000)
    f.write_text(yaml.safe_dump({"idc": "dc1", "logging": {"audit_trail_max_records": -1}}))
    with pytest.raises(ConfigError, match="audit_trail_max_records"):
        load_config(f)
