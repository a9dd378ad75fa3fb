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

A watch stream can also go silent without failing: a member cut off from its cluster, a process
that stopped answering while its TCP connection stays up. Two guards, as etcd's own client and
Kubernetes use them:

* the stream carries ``hasleader`` metadata, so a member that loses its leader cancels the watch
  (etcd answers UNAVAILABLE and the caller reconnects, maybe to another member);
* after ``progress_interval`` seconds without a message the watch asks etcd for a progress
  notification (``WatchProgressRequest``, etcd ≥ 3.4). If nothing at all arrives within
  ``stall_timeout`` after that, the stream is declared stalled and ended with an
  ``unavailable`` :class:`StoreError`; the caller re-watches from its next revision, so nothing
  is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from typing import Any

import grpc
from aetcd import rpc

from regional_client.core.errors import StoreError


class Compacted(Exception):
    """The start revision was compacted: the caller must re-list."""

    def __init__(self, revision: int) -> None:
        super().__init__(f"revision compacted (oldest kept: {revision})")
        self.revision = revision


class ThreadWatch:
    """Watch ``prefix`` from ``start_revision`` on ``target`` ("host:port").

    :meth:`get` returns the next batch of raw events — ``(kind, key, value bytes, mod_revision)``
    tuples — or raises :class:`Compacted` or :class:`StoreError` when the stream ends; after
    that the watch is finished and the caller opens a new one. :meth:`close` stops it and
    :meth:`wait_closed` waits (bounded) until its thread has let go of the channel.
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
        progress_interval: float = 10.0,
        stall_timeout: float = 10.0,
    ) -> None:
        self.target = target
        self.prefix = prefix
        self.start_revision = start_revision
        self.credentials = credentials
        self.username = username
        self.password = password
        self.connect_timeout = connect_timeout
        self.options = options or []
        self.progress_interval = progress_interval
        self.stall_timeout = stall_timeout
        self._last_recv = time.monotonic()  # any message from etcd: events, progress, created
        self._stalled_for: float | None = None
        self._finished = threading.Event()
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

    async def wait_closed(self, timeout: float = 2.0) -> bool:
        """After :meth:`close`: wait until the thread has closed its channel (at most ``timeout``
        seconds). A process that exits, or a store that closes, while a gRPC thread is still
        tearing down a stream can hang in gRPC's own shutdown; this orders the two."""
        if self._finished.is_set():
            return True
        return await asyncio.to_thread(self._finished.wait, timeout)

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
        tick = max(0.05, min(self.progress_interval, self.stall_timeout) / 4)
        probe_sent: float | None = None
        while True:
            try:
                if self._requests.get(timeout=tick) is None:
                    return  # close()
            except queue.Empty:
                pass
            now = time.monotonic()
            if probe_sent is not None:
                if self._last_recv >= probe_sent:
                    probe_sent = None  # etcd answered (an event or the progress notification)
                elif now - probe_sent >= self.stall_timeout:
                    self._stall(now - self._last_recv)
                    return
            if probe_sent is None and now - self._last_recv >= self.progress_interval:
                probe_sent = now
                yield rpc.WatchRequest(progress_request=rpc.WatchProgressRequest())

    def _stall(self, silent_for: float) -> None:
        with self._lock:
            self._stalled_for = silent_for
            call = self._call
        if call is not None:
            call.cancel()

    def _run(self) -> None:
        if self.credentials is not None:
            channel = grpc.secure_channel(self.target, self.credentials, options=self.options)
        else:
            channel = grpc.insecure_channel(self.target, options=self.options)
        try:
            # a member without a leader cancels the watch instead of keeping it silently open
            metadata: tuple[tuple[str, str], ...] = (("hasleader", "true"),)
            if self.username is not None and self.password is not None:
                token = rpc.AuthStub(channel).Authenticate(
                    rpc.AuthenticateRequest(name=self.username, password=self.password),
                    timeout=self.connect_timeout,
                )
                metadata += (("token", token.token),)
            call = rpc.WatchStub(channel).Watch(self._requests_iter(), metadata=metadata)
            with self._lock:
                if self._closed:
                    call.cancel()
                self._call = call
            for resp in call:
                self._last_recv = time.monotonic()
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
            if self._stalled_for is not None and not self._closed:
                self._end(
                    StoreError(
                        f"watch stream stalled: nothing from etcd for {self._stalled_for:.0f}s, "
                        f"not even an answer to a progress request",
                        unavailable=True,
                    )
                )
            elif not self._closed:
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
            self._finished.set()


def _prefix_end(prefix: bytes) -> bytes:
    """The etcd range end covering every key starting with ``prefix``."""
    b = bytearray(prefix)
    for i in range(len(b) - 1, -1, -1):
        if b[i] < 0xFF:
            b[i] += 1
            return bytes(b[: i + 1])
    return b"\x00"
