"""MAC → port lookup over SNMP v2c for any switch (pysnmp).

Path: BRIDGE-MIB ``dot1dTpFdbPort.<mac>`` (a direct GET) or, when the switch keeps its table per
VLAN, Q-BRIDGE-MIB ``dot1qTpFdbPort.<fdbId>.<mac>`` (a walk, matched on the MAC suffix; the fdbId
is reported as the VLAN) → bridge port → ``dot1dBasePortIfIndex`` → ifIndex → ``ifName`` (IF-MIB,
``ifDescr`` as fallback). Useful when a vendor driver is SSH-only or its CLI MAC table is slow
(a few UDP round trips, on every switch of the inventory in parallel); the manager then reads
only the found port's mode over the CLI/API. The community is a secret: it is never logged.
"""

from __future__ import annotations

from typing import Any

from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    get_cmd,
    walk_cmd,
)
from pysnmp.proto.rfc1905 import EndOfMibView, NoSuchInstance, NoSuchObject

from regional_client.core.errors import DriverTimeout, SwitchError
from regional_client.drivers.switch import validate
from regional_client.drivers.switch.base import MacLocation

DOT1D_TP_FDB_PORT = "1.3.6.1.2.1.17.4.3.1.2"
DOT1Q_TP_FDB_PORT = "1.3.6.1.2.1.17.7.1.2.2.1.2"
DOT1D_BASE_PORT_IFINDEX = "1.3.6.1.2.1.17.1.4.1.2"
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
VTP_VLAN_STATE = "1.3.6.1.4.1.9.9.46.1.3.1.1.2.1"
_MISSING = (NoSuchInstance, NoSuchObject, EndOfMibView)


def mac_suffix(mac: str) -> str:
    """``0c:c4:7a:12:34:56`` → ``12.196.122.18.52.86`` (the MAC as an OID index)."""
    return ".".join(str(int(b, 16)) for b in validate.mac_address(mac).split(":"))


class SnmpMacLookup:
    def __init__(
        self,
        host: str,
        community: str,
        port: int = 161,
        timeout: float = 5.0,
        retries: int = 1,
        vlan_communities: bool = False,
    ) -> None:
        self.host, self.port = host, port
        self._community = community
        self.timeout, self.retries = timeout, retries
        self.vlan_communities = vlan_communities
        """Cisco IOS: the bridge tables are per VLAN, read with community ``<community>@<vlan>``
        for each VLAN listed in CISCO-VTP-MIB ``vtpVlanState``."""

    def __repr__(self) -> str:
        return f"SnmpMacLookup({self.host}:{self.port})"

    async def find(self, mac: str) -> MacLocation | None:
        suffix = mac_suffix(mac)
        engine = SnmpEngine()
        try:
            target = await UdpTransportTarget.create(
                (self.host, self.port), timeout=self.timeout, retries=self.retries
            )
            args = (engine, CommunityData(self._community, mpModel=1), target, ContextData())
            vlan: int | None = None
            bridge_args = args
            bridge_port = await self._get(args, f"{DOT1D_TP_FDB_PORT}.{suffix}")
            if bridge_port is None:
                bridge_port, vlan = await self._walk_qbridge(args, suffix)
            if bridge_port is None and self.vlan_communities:
                bridge_port, vlan, bridge_args = await self._per_vlan(args, suffix)
            if bridge_port is None:
                return None
            ifindex = await self._get(bridge_args, f"{DOT1D_BASE_PORT_IFINDEX}.{int(bridge_port)}")
            if ifindex is None:
                raise SwitchError(f"bridge port {bridge_port} has no ifIndex", device=self.host)
            name = await self._get(args, f"{IF_NAME}.{int(ifindex)}")
            name = name or await self._get(args, f"{IF_DESCR}.{int(ifindex)}")
            if name is None:
                raise SwitchError(f"ifIndex {ifindex} has no name", device=self.host)
            return MacLocation(str(name), vlan)
        finally:
            engine.close_dispatcher()

    async def _get(self, args: tuple[Any, ...], oid: str) -> Any:
        err, status, _, binds = await get_cmd(*args, ObjectType(ObjectIdentity(oid)))
        self._check(err, status)
        value = binds[0][1]
        return None if isinstance(value, _MISSING) else value

    async def _per_vlan(
        self, args: tuple[Any, ...], suffix: str
    ) -> tuple[Any, int | None, tuple[Any, ...]]:
        """Cisco community indexing: ``dot1dTpFdbPort`` in each VLAN's own bridge instance."""
        vlans: list[int] = []
        async for err, status, _, binds in walk_cmd(
            *args, ObjectType(ObjectIdentity(VTP_VLAN_STATE)), lexicographicMode=False
        ):
            self._check(err, status)
            for name, _value in binds:
                vid = int(str(name).rsplit(".", 1)[1])
                # VLAN 1 is the plain community's instance (already asked); 1002-1005 are the
                # FDDI/Token Ring defaults, which have no bridge
                if vid != 1 and not 1002 <= vid <= 1005:
                    vlans.append(vid)
        engine, _, target, ctx = args
        for vid in vlans:
            per = (engine, CommunityData(f"{self._community}@{vid}", mpModel=1), target, ctx)
            try:
                port = await self._get(per, f"{DOT1D_TP_FDB_PORT}.{suffix}")
            except DriverTimeout:
                continue  # a VLAN without a bridge instance does not answer; try the next
            if port is not None:
                return port, vid, per
        return None, None, args

    async def _walk_qbridge(self, args: tuple[Any, ...], suffix: str) -> tuple[Any, int | None]:
        tail = "." + suffix
        async for err, status, _, binds in walk_cmd(
            *args, ObjectType(ObjectIdentity(DOT1Q_TP_FDB_PORT)), lexicographicMode=False
        ):
            self._check(err, status)
            for name, value in binds:
                oid = str(name)
                if oid.endswith(tail) and not isinstance(value, _MISSING):
                    fdb = oid[len(DOT1Q_TP_FDB_PORT) + 1 : -len(tail)]
                    return value, int(fdb) if fdb.isdigit() else None
        return None, None

    def _check(self, err: Any, status: Any) -> None:
        if err:
            raise DriverTimeout(f"SNMP to {self.host}:{self.port}: {err}", device=self.host)
        if status:
            raise SwitchError(
                f"SNMP error from {self.host}: {status.prettyPrint()}", device=self.host
            )


__all__ = ["SnmpMacLookup", "mac_suffix"]
