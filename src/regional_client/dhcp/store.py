"""Leases and static bindings in etcd (``/os/{idc}/dhcp/leases/{mac}``, ``.../bindings/{mac}``).

:meth:`DhcpStore.load` reads both prefixes at start (records that do not parse are reported and
skipped, never fatal); :meth:`DhcpStore.write` persists a batch of lease changes concurrently
(one gRPC stream, many requests in flight: the server's group commit); :meth:`watch_bindings`
follows the bindings prefix so a binding written by the admin API of another instance, or by
the control plane, is served without a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from regional_client.core.errors import ProvisionError
from regional_client.dhcp.leases import Binding, Change, Lease
from regional_client.store.etcd import EtcdStore, encode
from regional_client.store.keys import Keys

__all__ = ["TXN_OPS", "BindingEvent", "DhcpStore", "Loaded"]

TXN_OPS = 128
"""Operations per etcd transaction (etcd's default ``--max-txn-ops`` is 128)."""


@dataclass(slots=True)
class Loaded:
    leases: list[Lease]
    bindings: list[Binding]
    revision: int
    invalid: list[str]
    """Keys whose value did not parse (left in etcd untouched, logged by the caller)."""


@dataclass(slots=True)
class BindingEvent:
    kind: Literal["put", "delete", "resync", "invalid"]
    mac: str = ""
    binding: Binding | None = None
    snapshot: list[Binding] | None = None
    key: str = ""


class DhcpStore:
    def __init__(self, store: EtcdStore, keys: Keys) -> None:
        self.store = store
        self.keys = keys

    async def load(self) -> Loaded:
        lease_kvs, _ = await self.store.get_prefix(self.keys.leases_prefix)
        bind_kvs, rev = await self.store.get_prefix(self.keys.bindings_prefix)
        invalid: list[str] = []
        leases = [x for x in (_parse(Lease, kv.key, kv.value, invalid) for kv in lease_kvs) if x]
        binds = [x for x in (_parse(Binding, kv.key, kv.value, invalid) for kv in bind_kvs) if x]
        return Loaded(leases, binds, rev, invalid)  # type: ignore[arg-type]

    async def write(self, changes: Iterable[Change]) -> None:
        """Persist lease changes (the last change per MAC wins) in etcd transactions of at most
        :data:`TXN_OPS` operations, all in flight at once.

        One transaction of 128 puts costs ~9 µs of our CPU per put against ~130 µs for a lone
        put through aetcd (measured here): this batching is what lets acknowledgements wait for
        their write at load.
        """
        final: dict[str, Change] = {}
        for ch in changes:
            final[ch[1].mac if ch[0] == "put" else ch[1]] = ch  # type: ignore[union-attr]
        ops: list[tuple[bytes, bytes | None]] = []
        for mac, ch in final.items():
            key = (self.keys.leases_prefix + mac).encode()
            ops.append((key, encode(ch[1].to_json()) if ch[0] == "put" else None))  # type: ignore[union-attr]
        if len(ops) <= TXN_OPS:
            await self._txn(ops)
            return
        chunks = [ops[i : i + TXN_OPS] for i in range(0, len(ops), TXN_OPS)]
        results = await asyncio.gather(*(self._txn(c) for c in chunks), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

    async def _txn(self, ops: list[tuple[bytes, bytes | None]]) -> None:
        """One unconditional etcd transaction of puts (value) and deletes (None)."""
        puts = {k.decode(): v for k, v in ops if v is not None}
        deletes = [k.decode() for k, v in ops if v is None]
        await self.store.put_many(puts, deletes)

    async def put_binding(self, b: Binding) -> int:
        return await self.store.put(self.keys.binding(b.mac), b.to_json())

    async def delete_binding(self, mac: str) -> bool:
        return await self.store.delete(self.keys.binding(mac))

    async def delete_lease(self, mac: str) -> bool:
        return await self.store.delete(self.keys.lease(mac))

    async def watch_bindings(self, start_revision: int) -> AsyncIterator[BindingEvent]:
        prefix = self.keys.bindings_prefix
        async for ev in self.store.watch_prefix(prefix, start_revision):
            if ev.kind == "resync":
                bad: list[str] = []
                snap = [_parse(Binding, kv.key, kv.value, bad) for kv in ev.snapshot or []]
                yield BindingEvent("resync", snapshot=[b for b in snap if b is not None])
                continue
            mac = ev.key[len(prefix) :]
            if ev.kind == "delete":
                yield BindingEvent("delete", mac=mac, key=ev.key)
                continue
            bad = []
            b = _parse(Binding, ev.key, ev.value, bad)
            if b is None or b.mac != mac:
                yield BindingEvent("invalid", mac=mac, key=ev.key)
            else:
                yield BindingEvent("put", mac=mac, binding=b, key=ev.key)


def _parse(cls: Any, key: str, value: Any, invalid: list[str]) -> Any:
    try:
        obj = cls.from_json(value)
    except ProvisionError:
        invalid.append(key)
        return None
    if not key.endswith("/" + obj.mac):
        invalid.append(key)
        return None
    return obj
