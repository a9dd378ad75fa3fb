"""One etcd watch stream read by a thread, its events handed to the event loop in batches.

Why not aetcd's watcher (which the rest of :mod:`regional_client.store.etcd` uses): with
``grpc.aio`` each stream message costs at least one turn of the event loop, and etcd sends a
message per revision. When the loop is busy (a thousand installs: agent API, TFTP, DHCP, device
sessions) a turn takes tens of milliseconds, so the watch delivered a few dozen revisions a
second while etcd produced over a hundred: the workflow bench saw the task cache fall ~10,000
revisions behind. Here a thread iterates the stream with the synchronous gRPC API (no loop
involved) and queues what it reads; the loop takes everything queued in one turn.

No library does this (aetcd and etcd3gw are loop- or HTTP-bound; the synchronous ``etcd3``
package is unmaintained), so the stream is driven directly with aetcd's generated stubs
(``aetcd.rpc``) on a synchronous channel: watch create, responses, compaction, cancel.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from typing import Any

import grpc
from aetcd import rpc

from regional_client.errors import StoreError


class Compacted(Exception):
    """The start revision was compacted: the caller must re-list."""

    def __init__(self, revision: int) -> None:
        super().__init__(f"revision compacted (oldest kept: {revision})")
        self.revision = revision


class ThreadWatch:
    """Watch ``prefix`` from ``start_revision`` on ``target`` ("host:port").

    :meth:`get` returns the next batch of raw events — ``(kind, key, value bytes, mod_revision)``
    tuples — or raises :class:`Compacted` or :class:`StoreError` when the stream ends; after
    that the watch is finished and the caller opens a new one. :meth:`close` stops it.
    """

    def __init__(
        self,
        target: str,
        prefix: bytes,
        start_revision: int,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        username: str | None = None,
        password: str | None = None,
        connect_timeout: float = 5.0,
        options: list[tuple[str, Any]] | None = None,
    ) -> None:
        self.target = target
        self.prefix = prefix
        self.start_revision = start_revision
        self.credentials = credentials
        self.username = username
        self.password = password
        self.connect_timeout = connect_timeout
        self.options = options or []
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[list[tuple[str, str, bytes, int]] | BaseException] = (
            asyncio.Queue()
        )
        self._lock = threading.Lock()
        self._pending: list[tuple[str, str, bytes, int]] = []
        self._scheduled = False
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._call: Any = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="etcd-watch", daemon=True)
        self._thread.start()

    # ----- event-loop side ------------------------------------------------------------------

    async def get(self) -> list[tuple[str, str, bytes, int]]:
        item = await self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        with self._lock:
            self._closed = True
            call = self._call
        self._requests.put(None)
        if call is not None:
            call.cancel()

    def _drain(self) -> None:
        with self._lock:
            batch, self._pending, self._scheduled = self._pending, [], False
        if batch:
            self._queue.put_nowait(batch)

    # ----- thread side ----------------------------------------------------------------------

    def _deliver(self, events: list[tuple[str, str, bytes, int]]) -> None:
        with self._lock:
            self._pending.extend(events)
            if self._scheduled:
                return
            self._scheduled = True
        self._soon(self._drain)

    def _end(self, exc: BaseException) -> None:
        def put() -> None:
            self._drain()  # events read before the end come first
            self._queue.put_nowait(exc)

        self._soon(put)

    def _soon(self, fn: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens any more
            self._loop.call_soon_threadsafe(fn)

    def _requests_iter(self) -> Any:
        range_end = _prefix_end(self.prefix)
        create = rpc.WatchCreateRequest(
            key=self.prefix, range_end=range_end, start_revision=self.start_revision
        )
        yield rpc.WatchRequest(create_request=create)
        while self._requests.get() is not None:  # nothing else to send; wait for close()
            pass

    def _run(self) -> None:
        if self.credentials is not None:
            channel = grpc.secure_channel(self.target, self.credentials, options=self.options)
        else:
            channel = grpc.insecure_channel(self.target, options=self.options)
        try:
            metadata = None
            if self.username is not None and self.password is not None:
                token = rpc.AuthStub(channel).Authenticate(
                    rpc.AuthenticateRequest(name=self.username, password=self.password),
                    timeout=self.connect_timeout,
                )
                metadata = (("token", token.token),)
            call = rpc.WatchStub(channel).Watch(self._requests_iter(), metadata=metadata)
            with self._lock:
                if self._closed:
                    call.cancel()
                self._call = call
            for resp in call:
                if resp.compact_revision:
                    self._end(Compacted(resp.compact_revision))
                    return
                if resp.canceled:
                    self._end(StoreError(f"etcd cancelled the watch: {resp.cancel_reason}"))
                    return
                if resp.events:
                    self._deliver(
                        [
                            (
                                "put" if ev.type == 0 else "delete",
                                ev.kv.key.decode(),
                                ev.kv.value,
                                ev.kv.mod_revision,
                            )
                            for ev in resp.events
                        ]
                    )
            self._end(StoreError("etcd ended the watch stream"))
        except grpc.RpcError as e:
            if not self._closed:
                code = e.code() if hasattr(e, "code") else None
                detail = e.details() if hasattr(e, "details") else str(e)
                name = code.name if code is not None else "error"
                self._end(
                    StoreError(
                        f"watch stream failed: {name}: {detail}",
                        unavailable=code == grpc.StatusCode.UNAVAILABLE,
                    )
                )
        except Exception as e:  # never die silently: the consumer would wait forever
            self._end(StoreError(f"watch stream failed: {e!r}"))
        finally:
            channel.close()


def _prefix_end(prefix: bytes) -> bytes:
    """The etcd range end covering every key starting with ``prefix``."""
    b = bytearray(prefix)
    for i in range(len(b) - 1, -1, -1):
        if b[i] < 0xFF:
            b[i] += 1
            return bytes(b[: i + 1])
    return b"\x00"
