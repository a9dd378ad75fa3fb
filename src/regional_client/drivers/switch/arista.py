"""Arista EOS over eAPI: JSON-RPC ``runCmds`` over HTTPS with httpx.

Why httpx rather than pyeapi: pyeapi is synchronous (``requests``), so every call would need a
thread; eAPI is one POST of a JSON document, which httpx (already a dependency) does natively
async with connection reuse for the whole session. The command texts and JSON field names
(``switchports.*.switchportInfo``, ``interfaceStatuses``, ``unicastTable.tableEntries``) are
those of EOS ``show`` commands in JSON format.
"""

from __future__ import annotations

import itertools
import ssl
from typing import Any

import httpx

from regional_client.core.errors import (
    CommandFailed,
    DriverAuthError,
    DriverTimeout,
    ProtocolError,
    SwitchError,
)
from regional_client.drivers.switch import validate
from regional_client.drivers.switch.base import (
    MacLocation,
    PortChange,
    PortConfig,
    PortStatus,
    SwitchDriver,
)
from regional_client.drivers.switch.validate import NamingRules

NAMING = NamingRules(
    types={
        "et": "Ethernet",
        "eth": "Ethernet",
        "ethernet": "Ethernet",
        "po": "Port-Channel",
        "port-channel": "Port-Channel",
    },
    max_index_parts=3,
    description_max=240,
)

ACCESS = ("switchport mode access", "switchport access vlan {vlan}")
TRUNK = (
    "switchport mode trunk",
    "switchport trunk native vlan {native}",
    "switchport trunk allowed vlan {vlans}",
)
_ids = itertools.count(1)


def change_commands(ch: PortChange) -> list[str]:
    cfg = ch.config
    out = [f"interface {ch.port}"]
    if cfg.mode == "access":
        out += [t.format(vlan=cfg.vlans[0]) for t in ACCESS]
    else:
        vlans = validate.vlan_ranges(cfg.vlans)
        out += [t.format(vlans=vlans, native=cfg.native_vlan or 1) for t in TRUNK]
    if cfg.description is not None:
        out.append(f"description {cfg.description}" if cfg.description else "no description")
    return out


def parse_switchport(port: str, sp: dict[str, Any], status: dict[str, Any]) -> PortConfig:
    try:
        info = sp["switchports"][port]["switchportInfo"]
        desc = status["interfaceStatuses"][port].get("description", "")
    except (KeyError, TypeError) as exc:
        raise ProtocolError(f"eAPI reply has no switchport data for {port}", port=port) from exc
    if info.get("mode") == "trunk":
        vlans = validate.parse_vlan_ranges(str(info.get("trunkAllowedVlans", "ALL")))
        return PortConfig("trunk", vlans, int(info.get("trunkingNativeVlanId", 1)), desc)
    return PortConfig("access", (int(info.get("accessVlanId", 1)),), None, desc)


def parse_statuses(reply: dict[str, Any]) -> list[PortStatus]:
    out = []
    for name, st in (reply.get("interfaceStatuses") or {}).items():
        if not name.startswith("Ethernet"):
            continue
        bw = st.get("bandwidth")
        out.append(
            PortStatus(
                port=name,
                status="up" if st.get("linkStatus") == "connected" else "down",
                speed=f"{bw // 1_000_000_000}G" if bw and bw >= 1_000_000_000 else None,
                duplex=str(st.get("duplex", "")).removeprefix("duplex").lower() or None,
                mode=(st.get("vlanInformation") or {}).get("interfaceMode"),
                description=st.get("description") or None,
            )
        )
    return out


class AristaEapi(SwitchDriver):
    vendor = "arista_eos"
    naming = NAMING

    def __init__(self, params: Any) -> None:
        super().__init__(params)
        self._http: httpx.AsyncClient | None = None

    async def connect(self) -> None:
        p = self.params
        verify: bool | ssl.SSLContext = p.verify_tls
        if p.verify_tls and p.ca_bundle:
            verify = ssl.create_default_context(cafile=str(p.ca_bundle))
        self._http = httpx.AsyncClient(
            base_url=f"https://{p.host}:{p.port or 443}",
            auth=(p.username, p.password or ""),
            verify=verify,
            timeout=p.timeout,
        )
        try:
            await self._run(["show version"])
        except BaseException:
            await self.disconnect()
            raise

    async def disconnect(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    def _enable(self) -> Any:
        secret = self.params.enable_password
        return {"cmd": "enable", "input": secret} if secret else "enable"

    async def _run(self, cmds: list[str]) -> list[dict[str, Any]]:
        """One runCmds call (``enable`` first); returns the results of ``cmds``."""
        if self._http is None:
            raise SwitchError("not connected", device=self.params.name)
        self.sent.extend(["enable", *cmds])
        body = {
            "jsonrpc": "2.0",
            "method": "runCmds",
            "params": {"version": 1, "cmds": [self._enable(), *cmds], "format": "json"},
            "id": str(next(_ids)),
        }
        try:
            resp = await self._http.post("/command-api", json=body)
        except httpx.TimeoutException as exc:
            raise DriverTimeout("eAPI timed out", device=self.params.name) from exc
        except httpx.HTTPError as exc:
            raise SwitchError(f"eAPI request failed: {exc}", device=self.params.name) from exc
        if resp.status_code == 401:
            raise DriverAuthError("eAPI login failed", device=self.params.name)
        if resp.status_code != 200:
            raise SwitchError(f"eAPI HTTP {resp.status_code}", device=self.params.name)
        reply = resp.json()
        if "error" in reply:
            err = reply["error"]
            data = err.get("data") or []
            raise CommandFailed(
                f"eAPI: {err.get('message', 'error')}",
                device=self.params.name,
                code=err.get("code"),
                index=max(len(data) - 2, 0),  # failed command, counted without "enable"
                output=str(data[-1:])[:500],
            )
        return list(reply["result"][1:])

    async def find_port_by_mac(self, mac: str) -> MacLocation | None:
        mac = validate.mac_address(mac)
        h = mac.replace(":", "")
        [res] = await self._run([f"show mac address-table address {h[:4]}.{h[4:8]}.{h[8:]}"])
        for e in (res.get("unicastTable") or {}).get("tableEntries", []):
            if str(e.get("macAddress", "")).lower() == mac:
                return MacLocation(validate.port_name(e["interface"], NAMING), e.get("vlanId"))
        return None

    async def get_port_config(self, port: str) -> PortConfig:
        port = validate.port_name(port, NAMING)
        sp, st = await self._run(
            [f"show interfaces {port} switchport", f"show interfaces {port} status"]
        )
        return parse_switchport(port, sp, st)

    def commands_for(self, change: PortChange) -> list[str]:
        return change_commands(self._checked(change))

    def _checked(self, ch: PortChange) -> PortChange:
        return PortChange(
            validate.port_name(ch.port, NAMING), validate.port_config(ch.config, NAMING),
            ch.previous,
        )  # fmt: skip

    async def apply(self, changes: list[PortChange]) -> None:
        lines: list[str] = ["configure"]
        owner: list[str] = [""]
        for ch in changes:
            block = change_commands(self._checked(ch))
            lines += block
            owner += [ch.port] * len(block)
        lines.append("end")
        owner.append("")
        try:
            await self._run(lines)
        except CommandFailed as exc:
            i = min(int(exc.fields.get("index", 0)), len(lines) - 1)
            bad = owner[i] or None
            exc.fields.update(
                port=bad, command=lines[i], applied=sorted({o for o in owner[:i] if o} - {bad})
            )
            raise

    async def get_port_status(self, port: str) -> PortStatus:
        port = validate.port_name(port, NAMING)
        sp, st = await self._run(
            [f"show interfaces {port} switchport", f"show interfaces {port} status"]
        )
        cfg = parse_switchport(port, sp, st)
        [one] = parse_statuses(st)
        return PortStatus(one.port, one.status, one.speed, one.duplex, cfg.vlans, cfg.mode,
                          cfg.description)  # fmt: skip

    async def list_ports(self) -> list[PortStatus]:
        [st] = await self._run(["show interfaces status"])
        return parse_statuses(st)

    async def save_config(self) -> None:
        await self._run(["copy running-config startup-config"])


__all__ = ["AristaEapi", "change_commands", "parse_statuses", "parse_switchport"]
