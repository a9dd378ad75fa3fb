"""Simulated Arista EOS eAPI: HTTPS JSON-RPC ``runCmds`` on loopback with a self-signed cert.

Why a simulator: no EOS image runs here (vEOS/cEOS need registration and far more memory than
this machine has). Replies use the JSON shapes of EOS ``show`` commands in JSON format
(``switchports.<if>.switchportInfo``, ``interfaceStatuses``, ``unicastTable.tableEntries``) and
eAPI's error document (code 1002, ``data`` holding one result per command up to the failing one,
whose entry carries ``errors``). Per-port state, the command log and the ``refuse`` /
``lie_on_readback`` knobs behave as in :mod:`.switch_sim`.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from regional_rack.switch_sim import SimPort
from regional_rack.switch_sim_cli import ALL_VLANS, ranges, vlan_text_to_set


def self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "arista-sim")])
    now = dt.datetime.now(dt.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    )  # fmt: skip
    keyfile.chmod(0o600)
    return certfile, keyfile


class _Refused(Exception):
    pass


@dataclass
class AristaSim:
    ports_count: int = 48
    username: str = "admin"
    password: str = "admin"
    host: str = "127.0.0.1"
    port: int = 0
    ports: dict[str, SimPort] = field(default_factory=dict)
    mac_table: list[tuple[str, int, str]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    refuse: list[str] = field(default_factory=list)
    lie_on_readback: int = 0
    requests: int = 0
    saves: int = 0
    certfile: Path | None = None
    workdir: Path | None = None
    """Where the certificate and key go (default: a temporary directory removed at stop)."""
    _before: dict[str, SimPort] = field(default_factory=dict, repr=False)
    _server: Any = field(default=None, repr=False)
    _task: Any = field(default=None, repr=False)
    _tmp: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.ports:
            for i in range(1, self.ports_count + 1):
                self.ports[f"Ethernet{i}"] = SimPort(f"Ethernet{i}")

    def port_name(self, i: int) -> str:
        return f"Ethernet{i}"

    def mutate(self, port: str, **changes: Any) -> None:
        """Set port state directly (rack set-up); not a device command, nothing is recorded."""
        p = self.ports[port]
        for k, v in changes.items():
            setattr(p, k, v)

    def learn(self, mac: str, port: str, vlan: int | None = None) -> None:
        self.mac_table = [e for e in self.mac_table if e[0] != mac]
        self.mac_table.append((mac.lower(), vlan or self.ports[port].access_vlan, port))

    # -- HTTP --------------------------------------------------------------------------------

    async def start(self) -> AristaSim:
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="switch-arista-")
        where = self.workdir or Path(self._tmp.name)
        where.mkdir(parents=True, exist_ok=True)
        self.certfile, keyfile = self_signed(where, self.host)
        app = Starlette(routes=[Route("/command-api", self._endpoint, methods=["POST"])])
        config = uvicorn.Config(app, host=self.host, port=self.port, log_level="warning",
                                ssl_certfile=str(self.certfile), ssl_keyfile=str(keyfile),
                                lifespan="off", timeout_graceful_shutdown=1)  # fmt: skip
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            await self._task
            self._server = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _authorized(self, request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        user, _, pw = base64.b64decode(value).decode().partition(":")
        return (user, pw) == (self.username, self.password)

    async def _endpoint(self, request: Request) -> JSONResponse:
        self.requests += 1
        if not self._authorized(request):
            return JSONResponse({"error": "Unauthorized"}, status_code=401)
        body = await request.json()
        cmds = body["params"]["cmds"]
        results: list[dict[str, Any]] = []
        mode = {"config": False, "port": None}
        for i, cmd in enumerate(cmds):
            text = cmd["cmd"] if isinstance(cmd, dict) else str(cmd)
            self.commands.append(text)
            try:
                results.append(self._run(text, mode))
            except _Refused:
                data = [*results, {"errors": [f"Invalid input (at token 0: '{text}')"]}]
                err = {"code": 1002, "data": data,
                       "message": f"CLI command {i + 1} of {len(cmds)} '{text}' failed: invalid command"}  # fmt: skip  # noqa: E501
                return JSONResponse({"jsonrpc": "2.0", "id": body.get("id"), "error": err})
        return JSONResponse({"jsonrpc": "2.0", "id": body.get("id"), "result": results})

    # -- commands ----------------------------------------------------------------------------

    def _port(self, name: str) -> SimPort:
        m = re.fullmatch(r"(?:Et|Ethernet)(\d+(?:/\d+)*)", name, re.I)
        if not m or f"Ethernet{m.group(1)}" not in self.ports:
            raise _Refused(name)
        return self.ports[f"Ethernet{m.group(1)}"]

    def _set(self, ctx: dict[str, Any], **kw: Any) -> dict[str, Any]:
        if ctx["port"] is None:
            raise _Refused("not in interface mode")
        p = self.ports[ctx["port"]]
        self._before.setdefault(p.name, replace(p))
        for k, v in kw.items():
            setattr(p, k, v)
        return {}

    def _read(self, name: str) -> SimPort:
        p = self._port(name)
        if self.lie_on_readback > 0 and p.name in self._before:
            self.lie_on_readback -= 1
            return self._before.pop(p.name)
        self._before.pop(p.name, None)
        return p

    def _run(self, text: str, mode: dict[str, Any]) -> dict[str, Any]:
        if any(re.search(rx, text) for rx in self.refuse):
            raise _Refused(text)
        t = text.strip()
        if t in ("enable", "show version"):
            return {} if t == "enable" else {"modelName": "vEOS-sim", "version": "4.31.2F"}
        if t == "configure":
            mode["config"] = True
            return {}
        if t == "end":
            mode.update(config=False, port=None)
            return {}
        if t == "copy running-config startup-config":
            self.saves += 1
            return {"messages": ["Copy completed successfully."]}
        if m := re.fullmatch(r"show mac address-table address (\S+)", t):
            return self._show_mac(m.group(1))
        if m := re.fullmatch(r"show interfaces (\S+) switchport", t):
            return {"switchports": {(p := self._read(m.group(1))).name: _switchport(p)}}
        if m := re.fullmatch(r"show interfaces(?: (\S+))? status", t):
            ports = [self._port(m.group(1))] if m.group(1) else list(self.ports.values())
            return {"interfaceStatuses": {p.name: _status(p) for p in ports}}
        if not mode["config"]:
            raise _Refused(t)
        if m := re.fullmatch(r"interface (\S+)", t):
            mode["port"] = self._port(m.group(1)).name
            return {}
        return self._config_line(t, mode)

    def _config_line(self, t: str, ctx: dict[str, Any]) -> dict[str, Any]:
        if m := re.fullmatch(r"switchport mode (access|trunk)", t):
            return self._set(ctx, mode=m.group(1))
        if m := re.fullmatch(r"switchport access vlan (\d{1,4})", t):
            return self._set(ctx, access_vlan=int(m.group(1)))
        if m := re.fullmatch(r"switchport trunk native vlan (\d{1,4})", t):
            return self._set(ctx, native_vlan=int(m.group(1)))
        if m := re.fullmatch(r"switchport trunk allowed vlan ([\d,\-]+)", t):
            return self._set(ctx, trunk_vlans=frozenset(vlan_text_to_set(m.group(1))))
        if m := re.fullmatch(r"description (.+)", t):
            return self._set(ctx, description=m.group(1))
        if t == "no description":
            return self._set(ctx, description="")
        raise _Refused(t)

    def _show_mac(self, mac: str) -> dict[str, Any]:
        want = re.sub(r"[^0-9a-f]", "", mac.lower())
        entries = [
            {"macAddress": m, "lastMove": 1454435814.697036, "interface": port, "moves": 1,
             "entryType": "dynamic", "vlanId": vlan}
            for m, vlan, port in self.mac_table if m.replace(":", "") == want
        ]  # fmt: skip
        return {"multicastTable": {"tableEntries": []}, "unicastTable": {"tableEntries": entries}}


def _switchport(p: SimPort) -> dict[str, Any]:
    allowed = "ALL" if p.trunk_vlans == ALL_VLANS else (ranges(p.trunk_vlans, ",", "-") or "NONE")
    return {
        "enabled": True,
        "switchportInfo": {
            "accessVlanId": p.access_vlan,
            "accessVlanName": "default" if p.access_vlan == 1 else f"VLAN{p.access_vlan:04d}",
            "dot1qVlanTagRequired": False,
            "dynamicAllowedVlans": {},
            "macLearning": True,
            "mode": p.mode,
            "sourceportFilterMode": "enabled",
            "staticTrunkGroups": [],
            "tpid": "0x8100",
            "tpidStatus": True,
            "trunkAllowedVlans": allowed,
            "trunkingNativeVlanId": p.native_vlan,
            "trunkingNativeVlanName": "default"
            if p.native_vlan == 1
            else f"VLAN{p.native_vlan:04d}",
        },
    }


def _status(p: SimPort) -> dict[str, Any]:
    link = (
        "connected"
        if p.link_up and p.admin_up
        else ("disabled" if not p.admin_up else "notconnect")
    )
    vinfo: dict[str, Any] = {"interfaceMode": "trunk" if p.mode == "trunk" else "bridged",
                             "interfaceForwardingModel": "bridged"}  # fmt: skip
    if p.mode == "access":
        vinfo["vlanId"] = p.access_vlan
    return {
        "description": p.description,
        "linkStatus": link,
        "vlanInformation": vinfo,
        "bandwidth": 10_000_000_000,
        "interfaceType": "10GBASE-T",
        "duplex": "duplexFull",
        "autoNegotiateActive": True,
        "lineProtocolStatus": "up" if link == "connected" else "down",
    }


__all__ = ["AristaSim", "self_signed"]
