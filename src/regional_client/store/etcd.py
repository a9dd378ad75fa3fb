"""Async JSON store over etcd v3 (the project's single source of truth).

Built on ``aetcd`` (asyncio gRPC client; see ``docs/architecture.md`` for why). ``aetcd`` gives
plain put/get/range/txn/lease/watch; this layer adds what the product needs on top:

* JSON values, ``KV`` records carrying ``mod_revision`` for compare-and-swap;
* :meth:`EtcdStore.update` — the seed's "AtomicUpdate": read, apply a function, write only if
  ``mod_revision`` is unchanged, re-read and retry on conflict (never a blind overwrite);
* :meth:`EtcdStore.watch_prefix` — a prefix watch that survives etcd restarts (it re-watches from
  the last revision it delivered, so no change made meanwhile is lost) and turns a compaction
  past that revision into a ``resync`` event carrying a full re-list; a stream that goes silent
  (not even answering a progress request) is re-opened the same way;
* :class:`KeptLease` — a lease kept alive in the background (``aetcd`` does not);
* TLS with client certificates and user/password (``aetcd`` only opens insecure channels);
* several endpoints: on connection failure the next one is tried.

Every ``aetcd``/gRPC failure surfaces as :class:`~regional_client.core.errors.StoreError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aetcd
import grpc
from aetcd import exceptions as aexc
from aetcd import rpc

from regional_client.config.etcd import EtcdConfig
from regional_client.core.errors import Conflict, StoreError
from regional_client.core.logs import get_logger
from regional_client.store.watch_thread import Compacted, ThreadWatch

log = get_logger("store")

DELETE: Any = object()
"""Return this from an :meth:`EtcdStore.update` function to delete the key (CAS-guarded)."""

_KEEPALIVE_OPTIONS = {
    # Pings only while calls are in flight, at most two without data between (gRPC's default):
    # etcd enforces a minimum ping interval and, with pings allowed without calls and without
    # data, answered "too_many_pings" GOAWAYs under load, failing every call in flight. A dead
    # endpoint is still noticed: requests time out (three in a row reconnect, see _call).
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
}


@dataclass(frozen=True, slots=True)
class KV:
    """One key with its parsed JSON value. ``value`` is None when the bytes are not JSON."""

    key: str
    value: Any
    mod_revision: int
    create_revision: int
    version: int = 0
    raw: bytes = b""

    @property
    def valid(self) -> bool:
        return self.value is not None


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """A change under a watched prefix.

    ``kind`` is ``put`` or ``delete`` for one key, or ``resync`` after a compaction made the
    missed history unavailable: ``snapshot`` then holds every key under the prefix at
    ``mod_revision`` and the consumer must replace its view with it.
    """

    kind: Literal["put", "delete", "resync"]
    key: str
    value: Any
    mod_revision: int
    snapshot: list[KV] | None = field(default=None)


def encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def _kv(kv: Any) -> KV:
    raw = bytes(kv.value)
    return KV(
        key=bytes(kv.key).decode("utf-8", "replace"),
        value=decode(raw) if raw else None,
        mod_revision=kv.mod_revision,
        create_revision=kv.create_revision,
        version=kv.version,
        raw=raw,
    )


class _Client(aetcd.Client):
    """``aetcd.Client`` that can open a TLS channel (client certificates optional)."""

    def __init__(self, *args: Any, credentials: grpc.ChannelCredentials | None = None, **kw: Any):
        super().__init__(*args, **kw)
        self._credentials = credentials

    async def connect(self) -> None:
        if self._credentials is None:
            return await super().connect()
        if self._connected.is_set():
            return None
        # Same steps as aetcd.Client.connect, on a secure channel.
        target = f"{self._host}:{self._port}"
        self.channel = rpc.secure_channel(target, self._credentials, options=self._options.items())
        try:
            if self._username is not None and self._password is not None:
                self.auth_stub = rpc.AuthStub(self.channel)
                resp = await self.auth_stub.Authenticate(
                    rpc.AuthenticateRequest(name=self._username, password=self._password),
                    timeout=self._timeout,
                )
                self.metadata = (("token", resp.token),)
        except grpc.aio.AioRpcError as e:
            aexc._handle_exception(e)
        self.kvstub = rpc.KVStub(self.channel)
        self.clusterstub = rpc.ClusterStub(self.channel)
        self.leasestub = rpc.LeaseStub(self.channel)
        self.maintenancestub = rpc.MaintenanceStub(self.channel)
        self._watcher = aetcd.watcher.Watcher(
            rpc.WatchStub(self.channel), timeout=self._timeout, metadata=self.metadata
        )
        self._connected.set()
        return None


def _split_endpoint(ep: str) -> tuple[str, int]:
    ep = ep.strip()
    for scheme in ("http://", "https://"):
        if ep.startswith(scheme):
            ep = ep[len(scheme) :]
    ep = ep.rstrip("/")
    if ep.startswith("["):  # [::1]:2379
        host, _, port = ep[1:].partition("]:")
        return host, int(port or 2379)
    host, sep, port = ep.rpartition(":")
    if not sep:
        return ep, 2379
    return host, int(port)


class EtcdStore:
    """JSON key-value access to etcd with CAS updates, resumable watches and kept leases."""

    def __init__(
        self,
        endpoints: list[str],
        *,
        username: str | None = None,
        password: str | None = None,
        ca_cert: Path | None = None,
        cert_file: Path | None = None,
        key_file: Path | None = None,
        dial_timeout: float = 5.0,
        request_timeout: float = 10.0,
        max_cas_retries: int = 100,
        watch_progress_interval: float = 10.0,
        watch_stall_timeout: float = 10.0,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is required")
        self.endpoints = [_split_endpoint(e) for e in endpoints]
        # a silent watch stream asks etcd for progress after this long, and is re-opened when
        # even that goes unanswered for watch_stall_timeout (see store/watch_thread.py)
        self.watch_progress_interval = watch_progress_interval
        self.watch_stall_timeout = watch_stall_timeout
        self._username = username
        self._password = password
        self._tls = (ca_cert, cert_file, key_file)
        self.dial_timeout = dial_timeout
        self.request_timeout = request_timeout
        self.max_cas_retries = max_cas_retries
        self._client: _Client | None = None
        self._ep_cycle = itertools.cycle(range(len(self.endpoints)))
        self._ep_index = 0
        self._connect_lock = asyncio.Lock()
        self._closed = False
        self._timeouts_in_row = 0
        self.writes = 0
        """Number of successful writes (put/create/delete/CAS) — for benchmarks and metrics."""

    # ----- connection -------------------------------------------------------------------------


    @classmethod
    def from_config(
        cls,
        cfg: EtcdConfig,
        endpoints: list[str],
        decrypt: Callable[[str], str],
        state_dir: Path | None = None,
    ) -> EtcdStore:
        """A store for the ``etcd:`` section (``endpoints`` resolved by the caller: the
        embedded etcd's when none are configured); ``decrypt`` opens an ``enc:`` password.
        With no endpoints configured, the embedded etcd's client certificates under
        ``state_dir`` are used (it accepts no client without them)."""
        ca, cert, key = cfg.ca_cert, cfg.cert_file, cfg.key_file
        if cfg.is_embedded and state_dir is not None:
            from regional_client.store.embedded import embedded_tls

            tls = embedded_tls(state_dir)
            if tls is not None:
                ca, cert, key = tls.ca, tls.client_cert, tls.client_key
        return cls(
            endpoints,
            username=cfg.username,
            password=decrypt(cfg.password) if cfg.password else None,
            ca_cert=ca,
            cert_file=cert,
            key_file=key,
            dial_timeout=cfg.dial_timeout,
            request_timeout=cfg.request_timeout,
        )
    def _credentials(self) -> grpc.ChannelCredentials | None:
        ca, cert, key = self._tls
        if ca is None and cert is None:
            return None
        return grpc.ssl_channel_credentials(
            root_certificates=Path(ca).read_bytes() if ca else None,
            private_key=Path(key).read_bytes() if key else None,
            certificate_chain=Path(cert).read_bytes() if cert else None,
        )

    async def connect(self) -> None:
        """Connect to the first endpoint that answers (raises StoreError if none does)."""
        await self._ensure()

    async def _ensure(self) -> _Client:
        if self._client is not None:
            return self._client
        async with self._connect_lock:
            if self._client is not None:
                return self._client
            errors = []
            for _ in range(len(self.endpoints)):
                idx = next(self._ep_cycle)
                host, port = self.endpoints[idx]
                client = _Client(
                    host=host,
                    port=port,
                    username=self._username,
                    password=self._password,
                    timeout=self.request_timeout,
                    options=dict(_KEEPALIVE_OPTIONS),
                    credentials=self._credentials(),
                )
                try:
                    await asyncio.wait_for(client.connect(), self.dial_timeout)
                    await asyncio.wait_for(client.status(), self.dial_timeout)
                except (TimeoutError, aexc.ClientError, grpc.aio.AioRpcError) as e:
                    errors.append(f"{host}:{port}: {_describe(e)}")
                    with contextlib.suppress(Exception):
                        await client.close()
                    continue
                self._client, self._ep_index = client, idx
                return client
            raise StoreError("etcd unreachable: " + "; ".join(errors), endpoints=errors)

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            # aetcd's close waits for its watcher, which can hang for tens of seconds after etcd
            # died: never let that block the next request.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 2.0)

    async def close(self) -> None:
        self._closed = True
        await self._drop_client()

    async def _call(self, op: Callable[[_Client], Any]) -> Any:
        """Run one request; on a connection failure reconnect (maybe elsewhere) and retry once.

        A request that timed out is not a connection failure: under load one slow answer must
        not tear down the channel (and with it every other request and the watches). Only
        ``TIMEOUTS_BEFORE_RECONNECT`` timeouts in a row, with no success between, make it
        reconnect (an endpoint that silently stopped answering; the next one is tried).
        """
        for attempt in (0, 1):
            client = await self._ensure()
            try:
                result = await op(client)
            except aexc.ConnectionTimeoutError as e:
                self._timeouts_in_row += 1
                if self._timeouts_in_row >= TIMEOUTS_BEFORE_RECONNECT:
                    self._timeouts_in_row = 0
                    await self._drop_client()
                raise StoreError(f"etcd request timed out: {_describe(e)}") from None
            except aexc.ConnectionFailedError as e:
                await self._drop_client()
                if attempt:
                    raise StoreError(f"etcd request failed: {_describe(e)}") from None
            except aexc.ClientError as e:
                raise StoreError(f"etcd request failed: {_describe(e)}") from None
            except grpc.aio.AioRpcError as e:
                await self._drop_client()
                if attempt:
                    raise StoreError(f"etcd request failed: {_describe(e)}") from None
            else:
                self._timeouts_in_row = 0
                return result
        raise AssertionError("unreachable")

    # ----- plain key-value --------------------------------------------------------------------

    async def get(self, key: str) -> KV | None:
        r = await self._call(lambda c: c.get(key.encode()))
        return None if r is None else _kv(r)

    async def get_prefix(self, prefix: str) -> tuple[list[KV], int]:
        """All keys under ``prefix`` and the store revision they were read at."""
        r = await self._call(lambda c: c.get_prefix(prefix.encode()))
        return [_kv(kv) for kv in r], r.header.revision

    async def revision(self, key: str = "/os/") -> int:
        """The store's current revision, read with a count-only range of ``key`` (a key the
        client may read: an etcd user limited to ``/os/`` is refused anything else)."""

        async def op(c: _Client) -> int:
            r = await c.kvstub.Range(
                rpc.RangeRequest(key=key.encode(), limit=1, count_only=True),
                timeout=c._timeout,
                metadata=c.metadata,
            )
            return int(r.header.revision)

        return await self._call(op)

    async def alarms(self) -> list[str]:
        """The cluster's active alarms (``NOSPACE``: the space quota is full and every write
        fails; ``CORRUPT``), each as ``NAME@member``; empty when all is well."""

        async def op(c: _Client) -> list[str]:
            out = []
            async for a in c.list_alarms():
                name = rpc.AlarmType.Name(a.alarm_type)
                out.append(f"{name}@{a.member_id:x}")
            return out

        return list(await self._call(op))

    async def latest_mod_revision(self, prefix: str) -> int:
        """The newest ``mod_revision`` of any key under ``prefix`` (0 if none): one cheap read."""

        async def op(c: _Client) -> int:
            r = await c.kvstub.Range(
                rpc.RangeRequest(
                    key=prefix.encode(),
                    range_end=aetcd.utils.prefix_range_end(prefix.encode()),
                    limit=1,
                    keys_only=True,
                    sort_order=rpc.RangeRequest.DESCEND,
                    sort_target=rpc.RangeRequest.MOD,
                ),
                timeout=c._timeout,
                metadata=c.metadata,
            )
            return int(r.kvs[0].mod_revision) if r.kvs else 0

        return await self._call(op)

    async def put(self, key: str, value: Any, lease: KeptLease | None = None) -> int:
        lid = lease.id if lease else None
        r = await self._call(lambda c: c.put(key.encode(), encode(value), lease=lid))
        self.writes += 1
        return r.header.revision

    async def create(self, key: str, value: Any, lease: KeptLease | None = None) -> bool:
        """Write ``key`` only if it does not exist. True if this call created it."""
        lid = lease.id if lease else None

        async def op(c: _Client) -> bool:
            ok, _ = await c.transaction(
                compare=[c.transactions.create(key.encode()) == 0],
                success=[c.transactions.put(key.encode(), encode(value), lease=lid)],
                failure=[],
            )
            return bool(ok)

        ok = await self._call(op)
        if ok:
            self.writes += 1
        return ok

    async def delete(self, key: str, prev_revision: int | None = None) -> bool:
        """Delete ``key`` (only if its mod_revision is ``prev_revision``, when given)."""
        if prev_revision is None:
            r = await self._call(lambda c: c.delete(key.encode()))
            deleted = bool(r and r.deleted)
        else:

            async def op(c: _Client) -> bool:
                ok, _ = await c.transaction(
                    compare=[c.transactions.mod(key.encode()) == prev_revision],
                    success=[c.transactions.delete(key.encode())],
                    failure=[],
                )
                return bool(ok)

            deleted = await self._call(op)
        if deleted:
            self.writes += 1
        return deleted

    async def keys_page(
        self, prefix: str, after: str | None = None, limit: int = 1000
    ) -> list[str]:
        """Up to ``limit`` key names under ``prefix``, in key order, starting after ``after``
        (no values: cheap paging through a large prefix)."""
        start = prefix.encode() if after is None else after.encode() + b"\0"

        async def op(c: _Client) -> list[str]:
            r = await c.kvstub.Range(
                rpc.RangeRequest(
                    key=start,
                    range_end=aetcd.utils.prefix_range_end(prefix.encode()),
                    limit=limit,
                    keys_only=True,
                ),
                timeout=c._timeout,
                metadata=c.metadata,
            )
            return [kv.key.decode() for kv in r.kvs]

        return await self._call(op)

    async def delete_range(self, start: str, end: str) -> int:
        """Delete every key ``start <= key < end``; returns how many."""

        async def op(c: _Client) -> int:
            r = await c.kvstub.DeleteRange(
                rpc.DeleteRangeRequest(key=start.encode(), range_end=end.encode()),
                timeout=c._timeout,
                metadata=c.metadata,
            )
            return int(r.deleted)

        deleted = await self._call(op)
        self.writes += 1
        return deleted

    async def delete_prefix(self, prefix: str) -> int:
        r = await self._call(lambda c: c.delete_prefix(prefix.encode()))
        self.writes += 1
        return int(r.deleted) if r else 0

    async def put_many(self, puts: dict[str, Any], deletes: list[str] | None = None) -> int:
        """Write and delete several keys in one unconditional transaction (one revision).

        Values are JSON-encoded unless they are ``bytes`` already. At most 128 operations
        (etcd's default ``--max-txn-ops``). Returns the transaction's revision.
        """
        deletes = deletes or []
        if len(puts) + len(deletes) > 128:
            raise ValueError("put_many takes at most 128 operations")

        async def op(c: _Client) -> int:
            t = c.transactions
            ops = [
                t.put(k.encode(), v if isinstance(v, bytes) else encode(v)) for k, v in puts.items()
            ]
            ops += [t.delete(k.encode()) for k in deletes]
            _, resp = await c.transaction(compare=[], success=ops, failure=[])
            if resp and resp[0].HasField("response_put"):
                return int(resp[0].response_put.header.revision)
            return await self.revision()

        rev = await self._call(op)
        self.writes += len(puts) + len(deletes)
        return rev

    async def put_if(self, key: str, value: Any, mod_revision: int) -> int | None:
        """Write ``key`` only if its mod_revision is still ``mod_revision`` (0: absent).

        Returns the new revision, or None when another writer got there first.
        """

        async def op(c: _Client) -> int | None:
            cmp = (
                c.transactions.create(key.encode()) == 0
                if mod_revision == 0
                else c.transactions.mod(key.encode()) == mod_revision
            )
            ok, resp = await c.transaction(
                compare=[cmp],
                success=[c.transactions.put(key.encode(), encode(value))],
                failure=[],
            )
            return resp[0].response_put.header.revision if ok else None

        rev = await self._call(op)
        if rev is not None:
            self.writes += 1
        return rev

    async def put_many_if(self, items: list[tuple[str, Any, int]]) -> int | None:
        """Write several keys in one transaction, each only if its mod_revision is unchanged.

        All or nothing: returns the new revision (every key's new mod_revision), or None if any
        key had changed (then nothing was written). At most 64 items (etcd's txn op limit is 128).
        """
        if not items:
            return None
        if len(items) > 64:
            raise ValueError("put_many_if takes at most 64 items")

        async def op(c: _Client) -> int | None:
            ok, resp = await c.transaction(
                compare=[c.transactions.mod(k.encode()) == rev for k, _, rev in items],
                success=[c.transactions.put(k.encode(), encode(v)) for k, v, _ in items],
                failure=[],
            )
            return resp[0].response_put.header.revision if ok else None

        rev = await self._call(op)
        if rev is not None:
            self.writes += len(items)
        return rev

    async def update(
        self, key: str, fn: Callable[[Any], Any], *, create: bool = False
    ) -> KV | None:
        """Compare-and-swap update (the seed's AtomicUpdate).

        ``fn(old)`` receives the current value (None if absent; a fresh copy each attempt) and
        returns the new value, or :data:`DELETE`. ``fn`` may raise to abort; nothing is written.
        A conflicting write re-reads and retries, up to ``max_cas_retries`` times (then
        :class:`~regional_client.core.errors.Conflict`). Returns the written KV (None if deleted).
        Without ``create``, an absent key raises :class:`~regional_client.core.errors.NotFound`.
        """
        from regional_client.core.errors import NotFound

        for _ in range(self.max_cas_retries):
            cur = await self.get(key)
            if cur is None and not create:
                raise NotFound(f"{key} does not exist", key=key)
            old = None if cur is None else decode(cur.raw)  # a fresh copy for fn to change
            new = fn(old)
            rev_then = 0 if cur is None else cur.mod_revision
            if new is DELETE:
                if cur is None or await self.delete(key, prev_revision=rev_then):
                    return None
                continue
            rev = await self.put_if(key, new, rev_then)
            if rev is not None:
                return KV(key, new, rev, cur.create_revision if cur else rev)
            await asyncio.sleep(0)
        raise Conflict(f"{key}: gave up after {self.max_cas_retries} conflicting updates", key=key)

    async def compact(self, revision: int) -> None:
        await self._call(lambda c: c.compact(revision, physical=True))

    # ----- watch ------------------------------------------------------------------------------

    async def watch_prefix(
        self, prefix: str, start_revision: int, *, max_backoff: float = 5.0
    ) -> AsyncGenerator[WatchEvent, None]:
        """Yield every change under ``prefix`` from ``start_revision`` on, forever.

        Survives etcd restarts and endpoint failover: after an error it reconnects with backoff
        and re-watches from the revision after the last delivered event. If that revision was
        compacted meanwhile it yields one ``resync`` event (a full re-list) and goes on from there.
        Cancel the consuming task to stop.
        """
        next_rev = start_revision
        backoff = 0.1
        while not self._closed:
            watch: ThreadWatch | None = None
            try:
                await self._ensure()  # a reachable endpoint (failover happens there)
                host, port = self.endpoints[self._ep_index]
                watch = ThreadWatch(
                    f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                    prefix.encode(),
                    next_rev,
                    credentials=self._credentials(),
                    username=self._username,
                    password=self._password,
                    connect_timeout=self.dial_timeout,
                    # always open: keepalive pings also find a silently dead endpoint
                    options=list(_KEEPALIVE_OPTIONS.items()),
                    progress_interval=self.watch_progress_interval,
                    stall_timeout=self.watch_stall_timeout,
                )
                while True:
                    batch = await watch.get()
                    backoff = 0.1
                    for kind, key, raw, rev in batch:
                        next_rev = rev + 1
                        value = decode(raw) if kind == "put" else None
                        yield WatchEvent(kind, key, value, rev)  # type: ignore[arg-type]
            except Compacted as e:
                log.warning(
                    "watch revision compacted; re-listing",
                    action="watch_resync",
                    prefix=prefix,
                    compacted=e.revision,
                )
                try:
                    kvs, rev = await self.get_prefix(prefix)
                except StoreError:
                    await asyncio.sleep(backoff)
                    continue
                next_rev = rev + 1
                yield WatchEvent("resync", prefix, None, rev, snapshot=kvs)
            except StoreError as e:
                log.warning(
                    "watch interrupted; resuming",
                    action="watch_retry",
                    prefix=prefix,
                    next_revision=next_rev,
                    error=e.message,
                )
                if e.fields.get("unavailable"):
                    await self._drop_client()  # dial again, maybe another endpoint
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, max_backoff)
            finally:
                if watch is not None:
                    watch.close()
                    await watch.wait_closed()

    # ----- leases -----------------------------------------------------------------------------

    async def lease(self, ttl: int, on_lost: Callable[[], None] | None = None) -> KeptLease:
        """Grant a lease and keep it alive in the background until :meth:`KeptLease.revoke`."""
        grant = await self._call(lambda c: c.lease(ttl))
        kept = KeptLease(self, grant.id, ttl, on_lost)
        kept.start()
        return kept


TIMEOUTS_BEFORE_RECONNECT = 3


class KeptLease:
    """An etcd lease refreshed every ``ttl/3`` seconds. ``on_lost`` runs if it expires."""

    def __init__(
        self, store: EtcdStore, lease_id: int, ttl: int, on_lost: Callable[[], None] | None
    ) -> None:
        self.store = store
        self.id = lease_id
        self.ttl = ttl
        self.on_lost = on_lost
        self.lost = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._keepalive())

    async def _keepalive(self) -> None:
        """Refresh every ``ttl/3``; after a failed refresh, try again within a second.

        The lease is declared lost only when etcd says so (TTL 0) or when no refresh has
        succeeded for ``ttl`` seconds; the warning says which, with the last error.
        """
        loop = asyncio.get_running_loop()
        interval = max(self.ttl / 3, 0.2)
        deadline = loop.time() + self.ttl
        wait = interval
        last_error = ""
        while True:
            await asyncio.sleep(wait)
            try:
                reply = await self.store._call(lambda c: c.refresh_lease(self.id))
            except StoreError as e:
                last_error = e.message
                if loop.time() < deadline:
                    wait = min(1.0, interval)
                    continue
                reply = None
            if reply is None or reply.TTL <= 0:
                self.lost = True
                reason = (
                    "etcd reports it expired"
                    if reply is not None
                    else f"no refresh succeeded for {self.ttl}s ({last_error})"
                )
                log.warning("etcd lease lost", action="lease_lost", lease=self.id, reason=reason)
                if self.on_lost:
                    self.on_lost()
                return
            deadline = loop.time() + reply.TTL
            wait = interval

    async def revoke(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(StoreError):
            await self.store._call(lambda c: c.revoke_lease(self.id))


def _describe(e: BaseException) -> str:
    if isinstance(e, grpc.aio.AioRpcError):
        return f"{e.code().name}: {e.details()}"
    text = str(e) or type(e).__name__
    return text.splitlines()[0][:300]
