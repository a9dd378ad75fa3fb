"""Async HTTP client for the agent API (``{regional_url}/api/v1``, bearer token).

Connection errors, timeouts and 5xx/429 answers are retried with capped exponential backoff and
jitter, by default without limit: a regional client that restarts (or fails over) is simply
waited for, the way a ramdisk agent must behave. 4xx answers are final and raise
:class:`AgentApiError` with the server's ``error``/``message``.

The token: no boot config carries one (SPEC §5). The answer to the first ``report`` of a boot
holds it; the client keeps it in memory only (never on disk, in the environment, in a log line
or in an exception) and sends it in the ``Authorization`` header from then on.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from regional_client.core.errors import ProvisionError
from regional_client.core.logs import get_logger

log = get_logger("agent.client")


class AgentApiError(ProvisionError):
    """The regional client refused a request (4xx). ``status`` is the HTTP status."""

    code = "agent_api_error"

    def __init__(self, message: str, status: int, error: str | None = None, path: str = ""):
        super().__init__(message, status=status, error=error, path=path)
        self.status = status
        self.error = error
        self.path = path


class RetriesExhausted(ProvisionError):
    """The regional client stayed unreachable for longer than the configured limit."""

    code = "agent_unreachable"


@dataclass
class Backoff:
    """Capped exponential backoff with "equal jitter".

    ``max_elapsed`` None retries forever; otherwise gives up once that many seconds of waiting
    have been spent.
    """

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0
    max_elapsed: float | None = None
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        cap = min(self.maximum, self.initial * self.factor**attempt)
        return self.rng.uniform(cap / 2, cap)


@dataclass(frozen=True)
class Operation:
    name: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Script:
    name: str
    interpreter: str
    content: str
    timeout: float


Sleep = Callable[[float], Awaitable[None]]


class AgentClient:
    """One agent's session with its regional client (one serial number, one boot's token).

    Until a ``report`` answer brought a token (:attr:`has_token`), only ``report`` is useful:
    a server with no task is recorded as discovered, one whose task has no agent session yet
    is told to wait. ``local_address`` binds the source address (the virtual rack's agents
    share one host but each has its own install IP).
    """

    def __init__(
        self,
        base_url: str,
        sn: str,
        *,
        local_address: str | None = None,
        backoff: Backoff | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.sn = sn
        self.backoff = backoff or Backoff()
        self._sleep = sleep
        if transport is None and local_address is not None:
            transport = httpx.AsyncHTTPTransport(local_address=local_address)
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/api/v1",
            headers=_headers(None),
            timeout=timeout,
            transport=transport,
            trust_env=False,
        )

    async def __aenter__(self) -> AgentClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(
        self, path: str, body: dict[str, Any], *, max_attempts: int | None = None
    ) -> dict[str, Any]:
        """POST ``body`` to ``path``; retry transient failures; return the JSON answer."""
        attempt = 0
        waited = 0.0
        while True:
            try:
                resp = await self._http.post(path, json=body)
            except httpx.TransportError as e:
                reason = f"{type(e).__name__}: {e}"
            else:
                if resp.status_code < 400:
                    return _json(resp, path)
                if resp.status_code < 500 and resp.status_code != 429:
                    raise _api_error(resp, path)
                reason = f"HTTP {resp.status_code}"
            attempt += 1
            delay = self.backoff.delay(attempt - 1)
            out_of_time = (
                self.backoff.max_elapsed is not None and waited + delay > self.backoff.max_elapsed
            )
            if (max_attempts is not None and attempt >= max_attempts) or out_of_time:
                raise RetriesExhausted(
                    f"{path}: regional client unreachable after {attempt} attempts ({reason})",
                    path=path,
                    attempts=attempt,
                )
            log.warning(
                "agent API call failed, retrying",
                action="agent_retry",
                path=path,
                reason=reason,
                attempt=attempt,
                delay=round(delay, 3),
            )
            await self._sleep(delay)
            waited += delay

    # --- the protocol -------------------------------------------------------------------

    @property
    def has_token(self) -> bool:
        return "authorization" in self._http.headers

    def forget_token(self) -> None:
        """The session ended (the task left installing): only a new report may bring one."""
        self._http.headers.pop("authorization", None)

    async def report(self, mac: str | None, hardware: dict[str, Any]) -> dict[str, Any]:
        """Report the inventory; the first report of a boot for an installing task returns
        this boot's token, which is kept (in memory) and left out of the returned answer."""
        answer = await self.call("/report", {"sn": self.sn, "mac": mac, "hardware": hardware})
        token = answer.pop("token", None)
        if isinstance(token, str) and token:
            self._http.headers["Authorization"] = f"Bearer {token}"
        return answer

    async def is_in_install_queue(self) -> bool:
        answer = await self.call("/device/isInInstallQueue", {"sn": self.sn})
        return answer.get("result") is True

    async def get_next_operation(self) -> Operation:
        answer = await self.call("/device/getNextOperation", {"sn": self.sn})
        name = answer.get("operation")
        if not isinstance(name, str) or not name:
            raise AgentApiError("getNextOperation answer has no operation", 200, path="op")
        params = answer.get("params")
        return Operation(name, params if isinstance(params, dict) else {})

    async def get_hardware_config(self) -> list[Script]:
        answer = await self.call("/device/getHardwareConfig", {"sn": self.sn})
        scripts = []
        for i, s in enumerate(answer.get("scripts") or []):
            if not isinstance(s, dict) or not isinstance(s.get("content"), str):
                raise AgentApiError(f"hardware script #{i} has no content", 200, path="hwcfg")
            scripts.append(
                Script(
                    name=str(s.get("name") or f"script-{i}"),
                    interpreter=str(s.get("interpreter") or "sh"),
                    content=s["content"],
                    timeout=float(s.get("timeout") or 600),
                )
            )
        return scripts

    async def operation_complete(
        self,
        operation: str,
        success: bool,
        message: str = "",
        output: str | None = None,
        exit_code: int | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "sn": self.sn,
            "operation": operation,
            "success": success,
            "message": message,
        }
        if output is not None:
            body["output"] = output
        if exit_code is not None:
            body["exit_code"] = exit_code
        return await self.call("/device/operationComplete", body)

    async def progress(self, operation: str | None, percent: float, message: str) -> bool:
        """Best effort: a few attempts, then give up quietly (progress must not stop work)."""
        body = {"sn": self.sn, "operation": operation, "percent": percent, "message": message}
        try:
            await self.call("/progress", body, max_attempts=3)
        except (RetriesExhausted, AgentApiError) as e:
            log.warning("progress report dropped", action="progress_dropped", reason=str(e))
            return False
        return True


def _headers(token: str | None) -> dict[str, str]:
    """Request headers; without a token only ``report`` is allowed."""
    headers = {"User-Agent": "regional-client-agent"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _json(resp: httpx.Response, path: str) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError as e:
        raise AgentApiError(f"{path}: answer is not JSON", resp.status_code, path=path) from e
    if not isinstance(data, dict):
        raise AgentApiError(f"{path}: answer is not a JSON object", resp.status_code, path=path)
    return data


def _api_error(resp: httpx.Response, path: str) -> AgentApiError:
    error = None
    message = resp.text[:300]
    try:
        data = resp.json()
        if isinstance(data, dict):
            error = data.get("error")
            message = str(data.get("message") or data.get("detail") or message)
    except ValueError:
        pass
    return AgentApiError(
        f"{path}: HTTP {resp.status_code}: {message}", resp.status_code, error, path
    )


__all__ = ["AgentApiError", "AgentClient", "Backoff", "Operation", "RetriesExhausted", "Script"]
