"""Switch SSH host keys: checked before any credential is sent.

Policy (``switch.host_keys``):

* ``tofu`` (default) — trust on first use, recorded in etcd: the first time any instance talks
  to a switch it fetches the host key alone (an SSH key exchange, no authentication: no password
  leaves), records it under ``/os/{idc}/regional/switch_host_keys/{switch}`` with a create-only
  write (the first instance wins; every other instance then uses the same key), and from then on
  every connection must present exactly that key, or it is refused before authentication
  (``SwitchError``, audited). Why not known_hosts files by default: an operator with hundreds of
  switches and several instances per IDC would have to distribute and keep them in step; etcd is
  already the one place every instance reads, and a changed key fails loudly everywhere. The
  exposure is the first contact only (a man in the middle then would have to stay in the middle
  for ever); to re-pin after a real key change, delete that etcd key.
* ``known_hosts`` — every SSH switch must name an OpenSSH ``ssh_known_hosts`` file (checked at
  config load); nothing is learnt.
* ``off`` — any key is accepted (lab use; logged at start).

A switch entry with ``ssh_known_hosts`` is checked against that file under every policy.
The check is asyncssh's own, during the handshake (scrapli's ``auth_strict_key`` compares the
key only after logging in — after the password was sent).
"""

from __future__ import annotations

from typing import Any, Protocol

import asyncssh

from regional_client.core.errors import SwitchError
from regional_client.model import now_iso

__all__ = ["EtcdHostKeys", "HostKeyPins", "MemoryHostKeys", "known_hosts_for"]


class HostKeyPins(Protocol):
    async def get(self, switch: str) -> str | None:
        """The pinned OpenSSH public key line of ``switch``, or None."""
        ...

    async def pin(self, switch: str, host: str, key: str) -> str:
        """Record ``key`` unless one is recorded already; return the recorded one."""
        ...


class MemoryHostKeys:
    """Pins kept in this process (tests, benchmarks)."""

    def __init__(self) -> None:
        self.keys: dict[str, str] = {}

    async def get(self, switch: str) -> str | None:
        return self.keys.get(switch)

    async def pin(self, switch: str, host: str, key: str) -> str:
        return self.keys.setdefault(switch, key)


class EtcdHostKeys:
    """Pins in etcd, shared by every instance of the IDC (create-only: the first one wins)."""

    def __init__(self, store: Any, prefix: str, audit: Any = None) -> None:
        self.store, self.prefix, self.audit = store, prefix, audit

    async def get(self, switch: str) -> str | None:
        kv = await self.store.get(self.prefix + switch)
        value = kv.value if kv is not None else None
        return str(value["key"]) if isinstance(value, dict) and value.get("key") else None

    async def pin(self, switch: str, host: str, key: str) -> str:
        record = {"key": key, "host": host, "pinned_at": now_iso()}
        if await self.store.create(self.prefix + switch, record):
            if self.audit is not None:
                self.audit.record("regional-client", "switch.host_key_pinned", switch,
                                  host=host, key=key)  # fmt: skip
            return key
        return await self.get(switch) or key


async def known_hosts_for(p: Any) -> Any:
    """asyncssh's ``known_hosts`` argument for connection params ``p``: a file, the pinned key
    (learnt first if need be), or None (policy ``off``: no check)."""
    if p.ssh_known_hosts:
        return str(p.ssh_known_hosts)
    pins: HostKeyPins | None = p.host_key_pins
    if pins is None:
        return None
    pinned = await pins.get(p.name)
    if pinned is None:
        try:
            key = await asyncssh.get_server_host_key(p.host, p.port or 22)
        except (OSError, asyncssh.Error) as e:
            raise SwitchError(f"SSH to {p.host}: cannot read its host key: {e}",
                              device=p.name) from e  # fmt: skip
        if key is None:
            raise SwitchError(f"SSH to {p.host}: no host key offered", device=p.name)
        line = key.export_public_key().decode("ascii").strip()
        pinned = await pins.pin(p.name, p.host, line)
    return ([asyncssh.import_public_key(pinned)], [], [])
