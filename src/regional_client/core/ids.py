"""Identifiers every layer checks: MAC addresses and serial numbers (one etcd key segment)."""

from __future__ import annotations

import re

from regional_client.core.errors import ValidationError

_MAC_RE = re.compile(r"^[0-9a-f]{2}([:-]?[0-9a-f]{2}){5}$")
_SN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def normalize_mac(mac: str) -> str:
    """``AA-BB-CC-DD-EE-FF`` / ``aabb.ccdd.eeff`` / ``aabbccddeeff`` → ``aa:bb:cc:dd:ee:ff``."""
    if not isinstance(mac, str):
        raise ValidationError("MAC address must be a string", field="mac")
    m = mac.strip().lower().replace(".", "")
    if not _MAC_RE.match(m):
        raise ValidationError(f"not a MAC address: {mac!r}", field="mac")
    hexd = m.replace(":", "").replace("-", "")
    return ":".join(hexd[i : i + 2] for i in range(0, 12, 2))


def check_sn(sn: str) -> str:
    """A serial number usable as one etcd key segment (no '/', no spaces, no control chars)."""
    if not isinstance(sn, str) or not _SN_RE.match(sn):
        raise ValidationError(
            f"invalid serial number {sn!r}: use letters, digits, '.', '_', ':' or '-' (max 128)",
            field="sn",
        )
    return sn
