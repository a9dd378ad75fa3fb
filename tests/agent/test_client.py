"""AgentClient against a small fault-injecting HTTP server on loopback.

The real regional client does not answer 503/429 or garbage on demand, so these reactions are
exercised against a FastAPI app served by uvicorn that does (a test double of the server's
failure modes; the protocol itself is tested against the real app in test_loop_e2e)."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from regional_client.agent.client import AgentApiError, AgentClient, Backoff, RetriesExhausted
from tests.helpers.regional import wait_until

FAST = Backoff(initial=0.01, maximum=0.05)


class Faulty:
    """Answers each path from a script of (status, body) pairs, then 200 {"result": "ok"}."""

    def __init__(self) -> None:
        self.plan: dict[str, list[tuple[int, Any]]] = {}
        self.seen: list[tuple[str, dict[str, Any], str | None]] = []
        self.app = FastAPI()
        self.app.add_api_route("/api/v1/{path:path}", self.handle, methods=["POST"])

    async def handle(self, path: str, request: Request) -> Response:
        self.seen.append(("/" + path, await request.json(), request.headers.get("authorization")))
        steps = self.plan.get("/" + path) or []
        default: dict[str, Any] = {"result": "ok"}
        if path == "report":  # the first report of a boot brings the token
            default = {"result": "ok", "status": "installing", "token": "tok"}
        status, body = steps.pop(0) if steps else (200, default)
        if isinstance(body, str):
            return PlainTextResponse(body, status_code=status)
        return JSONResponse(body, status_code=status)


async def _claim(f: Faulty, c: AgentClient) -> None:
    """The first report: its answer's token is kept by the client (and not returned)."""
    assert not c.has_token
    answer = await c.report("52:54:00:00:00:01", {})
    assert c.has_token and "token" not in answer
    f.seen.clear()


@pytest.fixture
async def faulty() -> AsyncIterator[tuple[Faulty, str]]:
    f = Faulty()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(f.app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await wait_until(lambda: server.started)
    yield f, f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task
    sock.close()


async def test_retries_5xx_and_429_then_succeeds(faulty: tuple[Faulty, str]) -> None:
    f, url = faulty
    f.plan["/device/isInInstallQueue"] = [(503, {"error": "store_unavailable"}), (429, "slow"),
                                          (500, "boom"), (200, {"result": True})]  # fmt: skip
    sleeps: list[float] = []

    async def sleep(d: float) -> None:
        sleeps.append(d)

    async with AgentClient(url, "SN1", backoff=FAST, sleep=sleep) as c:
        await _claim(f, c)
        assert await c.is_in_install_queue() is True
    assert len(sleeps) == 3 and len(f.seen) == 4
    assert all(auth == "Bearer tok" for _, _, auth in f.seen)
    assert f.seen[0][1] == {"sn": "SN1"}


async def test_4xx_is_final_with_server_message(faulty: tuple[Faulty, str]) -> None:
    f, url = faulty
    f.plan["/device/getNextOperation"] = [
        (422, {"error": "invalid_request", "message": "body.sn: Field required"})
    ]
    async with AgentClient(url, "SN1", backoff=FAST) as c:
        await _claim(f, c)
        with pytest.raises(AgentApiError) as ei:
            await c.get_next_operation()
    assert ei.value.status == 422 and ei.value.error == "invalid_request"
    assert "body.sn: Field required" in str(ei.value) and len(f.seen) == 1


@pytest.mark.parametrize(
    ("answer", "needle"),
    [("not json", "not JSON"), ([1, 2], "not a JSON object"), ({"params": {}}, "no operation")],
)
async def test_malformed_answers(faulty: tuple[Faulty, str], answer: Any, needle: str) -> None:
    f, url = faulty
    f.plan["/device/getNextOperation"] = [(200, answer)]
    async with AgentClient(url, "SN1", backoff=FAST) as c:
        await _claim(f, c)
        with pytest.raises(AgentApiError, match=needle):
            await c.get_next_operation()


async def test_hardware_config_defaults_and_bad_script(faulty: tuple[Faulty, str]) -> None:
    f, url = faulty
    f.plan["/device/getHardwareConfig"] = [
        (200, {"scripts": [{"content": "echo hi"}]}),
        (200, {"scripts": [{"name": "x"}]}),
    ]
    async with AgentClient(url, "SN1", backoff=FAST) as c:
        await _claim(f, c)
        [s] = await c.get_hardware_config()
        assert (s.name, s.interpreter, s.content, s.timeout) == ("script-0", "sh", "echo hi", 600)
        with pytest.raises(AgentApiError, match="no content"):
            await c.get_hardware_config()


async def test_gives_up_after_max_elapsed(faulty: tuple[Faulty, str]) -> None:
    f, url = faulty
    f.plan["/report"] = [(503, "down")] * 100
    backoff = Backoff(initial=0.01, maximum=0.02, max_elapsed=0.05)
    async with AgentClient(url, "SN1", backoff=backoff) as c:
        with pytest.raises(RetriesExhausted, match="unreachable after"):
            await c.report("52:54:00:00:00:01", {})
    assert f.seen[0][2] is None  # no token: no Authorization header
    assert 2 <= len(f.seen) < 100


async def test_progress_is_best_effort(faulty: tuple[Faulty, str]) -> None:
    f, url = faulty
    f.plan["/progress"] = [(500, "x")] * 5 + [(401, {"error": "unauthorized"})]
    async with AgentClient(url, "SN1", backoff=FAST) as c:
        await _claim(f, c)
        assert await c.progress("os_install", 10, "a") is False  # 3 attempts, all 500
        assert await c.progress("os_install", 20, "b") is False  # 500, 500, then 401
        assert await c.progress("os_install", 30, "c") is True
    assert [body["percent"] for _, body, _ in f.seen] == [10, 10, 10, 20, 20, 20, 30]


async def test_connection_refused_is_retried() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with AgentClient(f"http://127.0.0.1:{port}", "SN", backoff=FAST) as c:
        with pytest.raises(RetriesExhausted, match="ConnectError"):
            await c.call("/report", {}, max_attempts=3)


def test_backoff_grows_caps_and_jitters() -> None:
    b = Backoff(initial=1, factor=2, maximum=8, rng=random.Random(7))
    delays = [b.delay(n) for n in range(8)]
    caps = [1, 2, 4, 8, 8, 8, 8, 8]
    assert all(c / 2 <= d <= c for d, c in zip(delays, caps, strict=True))
    assert len(set(delays)) == len(delays)
