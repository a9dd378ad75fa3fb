"""Redfish driver over httpx (async), with session login reused per BMC.

Why httpx and not sushy: sushy is the reference Redfish client (OpenStack ironic), but it is
synchronous (``requests``) — every call would need a worker thread, and a hung BMC would pin
that thread past our timeout since a thread cannot be cancelled. The few resources a provisioner
needs (service root, systems, ``ComputerSystem.Reset``, the ``Boot`` override) are small, so
we speak them directly with ``httpx.AsyncClient`` (already a dependency): real cancellation,
per-request timeouts, one kept-alive connection pool per BMC. The payload handling lives in
:mod:`.redfish_model` as pure functions, in sushy's declarative spirit.

Behaviour:

* discovery — the service root (``/redfish/v1/``) names the ``Systems`` collection; the system is
  the only member or ``bmc.redfish.system_id``;
* auth — with ``use_sessions`` and a ``SessionService`` in the root, one login (``POST
  Sessions``) per BMC, the ``X-Auth-Token`` reused until it is refused (then one re-login) and
  the session deleted on :meth:`close`; otherwise HTTP basic auth on a kept-alive connection.
  The password is only in request bodies/headers, never in a URL, log or error;
* power — ``ComputerSystem.Reset`` with a ``ResetType`` the system advertises (inline
  ``@Redfish.AllowableValues`` or its ``@Redfish.ActionInfo``): on ``On``/``ForceOn``, off
  ``ForceOff``/``GracefulShutdown``, reset ``ForceRestart``/``GracefulRestart``/``PowerCycle``;
* boot — ``PATCH`` of ``Boot`` with ``BootSourceOverrideTarget`` (Pxe, Hdd, Cd, BiosSetup; must
  be advertised), ``BootSourceOverrideEnabled`` Once/Continuous and, when asked,
  ``BootSourceOverrideMode`` UEFI/Legacy; ``If-Match`` with the ETag when the BMC gives one;
* TLS — verified by default; ``verify_tls: false`` or a ``ca_bundle`` for self-signed BMCs.
"""

from __future__ import annotations

import contextlib
import ssl
from typing import Any

import httpx

from regional_client.config.bmc import RedfishOptions
from regional_client.core.errors import BmcError, DriverAuthError, DriverTimeout
from regional_client.drivers.bmc import redfish_model as rm
from regional_client.drivers.bmc.base import (
    BmcDriver,
    BmcTarget,
    BootDevice,
    BootSetting,
    PowerState,
    SystemInfo,
)

ROOT = "/redfish/v1/"


class RedfishDriver(BmcDriver):
    """Redfish over HTTP(S) to one BMC's ComputerSystem."""

    protocol = "redfish"

    def __init__(self, target: BmcTarget, options: RedfishOptions | None, timeout: float) -> None:
        super().__init__(target, options or RedfishOptions(), timeout)
        self.options: RedfishOptions
        self._client: httpx.AsyncClient | None = None
        self._root: dict[str, Any] | None = None
        self._system: str | None = None
        self._session_uri: str | None = None
        self._reset_types: list[str] | None = None
        self._auth: str | None = None
        """How this driver authenticates once logged in: ``session`` or ``basic``."""

    @property
    def base_url(self) -> str:
        o, t = self.options, self.target
        port = t.port or (443 if o.scheme == "https" else 80)
        host = f"[{t.host}]" if ":" in t.host else t.host
        return f"{o.scheme}://{host}:{port}"

    # -- the interface ----------------------------------------------------------------------
    async def get_power_status(self) -> PowerState:
        path, system = await self._get_system()
        return rm.power_state(system, path)

    async def power_on(self) -> None:
        await self._reset("on")

    async def power_off(self) -> None:
        await self._reset("off")

    async def power_reset(self) -> None:
        await self._reset("reset")

    async def set_boot_device(
        self, device: BootDevice, persistent: bool = False, uefi: bool | None = None
    ) -> None:
        path, system, etag = await self._get_system_etag()
        body = rm.boot_patch(system, device, persistent, uefi, self.name)
        headers = {"If-Match": etag} if etag else {}
        await self._request("PATCH", path, json=body, headers=headers)

    async def get_boot_device(self) -> BootSetting:
        path, system = await self._get_system()
        return rm.boot_setting(system, path)

    async def get_system_info(self) -> SystemInfo:
        _, system = await self._get_system()
        return rm.system_info(system)

    async def close(self) -> None:
        client, self._client = self._client, None
        self._auth = None
        if client is None:
            return
        if self._session_uri:
            with contextlib.suppress(httpx.HTTPError):  # best effort: the BMC expires it anyway
                await client.delete(self._session_uri)
            self._session_uri = None
        await client.aclose()

    # -- resources ------------------------------------------------------------------------------
    async def _get_system(self) -> tuple[str, dict[str, Any]]:
        path, system, _ = await self._get_system_etag()
        return path, system

    async def _get_system_etag(self) -> tuple[str, dict[str, Any], str | None]:
        path = await self._system_path()
        resp = await self._request("GET", path)
        return path, _json(resp, path), resp.headers.get("etag")

    async def _system_path(self) -> str:
        if self._system is None:
            root = await self._service_root()
            coll_path = rm.odata_id(root.get("Systems"), "Systems", ROOT)
            coll = _json(await self._request("GET", coll_path), coll_path)
            paths = rm.members(coll, coll_path)
            wanted = self.target.system_id or self.options.system_id
            self._system = rm.pick_system(paths, wanted, self.name)
        return self._system

    async def _service_root(self) -> dict[str, Any]:
        if self._root is None:
            client = self._http()
            resp = await self._send(client, "GET", ROOT)
            _raise_for(resp, self.name, ROOT)
            self._root = _json(resp, ROOT)
        return self._root

    async def _reset(self, kind: str) -> None:
        path, system = await self._get_system()
        target, allowed = rm.reset_action(system, path)
        if allowed is None:
            allowed = await self._reset_types_from_info(system)
        reset_type = rm.pick_reset_type(kind, allowed, self.name)
        await self._request("POST", target, json={"ResetType": reset_type})

    async def _reset_types_from_info(self, system: dict[str, Any]) -> list[str] | None:
        if self._reset_types is None:
            info_uri = (
                (system.get("Actions") or {}).get(rm.RESET_ACTION, {}).get("@Redfish.ActionInfo")
            )
            if isinstance(info_uri, str):
                self._reset_types = rm.action_info_values(
                    _json(await self._request("GET", info_uri), info_uri)
                )
        return self._reset_types

    # -- HTTP, auth -----------------------------------------------------------------------------
    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            o = self.options
            verify: bool | ssl.SSLContext = o.verify_tls
            if o.ca_bundle is not None:
                verify = ssl.create_default_context(cafile=str(o.ca_bundle))
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                verify=verify,
                timeout=httpx.Timeout(self.timeout),
                headers={"Accept": "application/json", "OData-Version": "4.0"},
                follow_redirects=False,
                trust_env=False,
            )
        return self._client

    async def _login(self, client: httpx.AsyncClient) -> None:
        """Session login if offered and wanted, else basic auth for every request."""
        root = await self._service_root()
        sessions = ((root.get("Links") or {}).get("Sessions") or {}).get("@odata.id")
        if self.options.use_sessions and "SessionService" in root and sessions:
            body = {"UserName": self.target.username, "Password": self.target.password}
            resp = await self._send(client, "POST", sessions, json=body)
            _raise_for(resp, self.name, sessions)
            token = resp.headers.get("x-auth-token")
            if not token:
                raise BmcError(f"BMC {self.name}: session login returned no token")
            client.headers["X-Auth-Token"] = token
            self._session_uri = resp.headers.get("location")
            self._auth = "session"
        else:
            client.auth = httpx.BasicAuth(self.target.username, self.target.password)
            self._auth = "basic"

    async def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        client = self._http()
        if self._auth is None:
            await self._login(client)
        resp = await self._send(client, method, path, **kw)
        if resp.status_code == 401 and self._auth == "session":
            del client.headers["X-Auth-Token"]  # session expired: log in again, once
            self._auth = None
            await self._login(client)
            resp = await self._send(client, method, path, **kw)
        _raise_for(resp, self.name, path)
        return resp

    async def _send(
        self, client: httpx.AsyncClient, method: str, path: str, **kw: Any
    ) -> httpx.Response:
        try:
            return await client.request(method, path, **kw)
        except httpx.TimeoutException:
            raise DriverTimeout(
                f"BMC {self.name}: no answer to {method} {path} within {self.timeout:g}s",
                device=self.name,
            ) from None
        except httpx.HTTPError as e:
            if "CERTIFICATE_VERIFY_FAILED" in str(e):
                raise BmcError(
                    f"BMC {self.name}: TLS certificate not trusted ({e}); set "
                    "bmc.redfish.ca_bundle, or verify_tls: false",
                    device=self.name,
                    permanent=True,
                ) from None
            raise BmcError(
                f"BMC {self.name}: {method} {path} failed: {type(e).__name__}: {e}",
                device=self.name,
            ) from None


def _raise_for(resp: httpx.Response, name: str, path: str) -> None:
    """Map an HTTP status to our errors (the one place that does it)."""
    code = resp.status_code
    if code < 400:
        return
    try:
        detail = rm.error_message(resp.json())
    except ValueError:
        detail = ""
    detail = detail or resp.reason_phrase
    if code in (401, 403):
        raise DriverAuthError(
            f"BMC {name}: credentials refused ({code} {detail})", device=name, status=code
        )
    raise BmcError(
        f"BMC {name}: {resp.request.method} {path} answered {code}: {detail}",
        device=name,
        status=code,
        permanent=400 <= code < 500 and code not in (408, 409, 429),
    )


def _json(resp: httpx.Response, path: str) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        raise BmcError(f"Redfish resource {path}: not JSON", resource=path) from None
    if not isinstance(data, dict):
        raise BmcError(f"Redfish resource {path}: not a JSON object", resource=path)
    return data


__all__ = ["RedfishDriver"]
