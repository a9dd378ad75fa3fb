"""Input validation for everything that may reach a switch CLI or API.

Nothing is sent to a device unless it went through here: port names are matched against the
vendor's interface naming (whole-string matches, ASCII only, so ``Gi1/0/1\\nreload`` or
``Gi1/0/1; reload`` cannot pass), VLANs are integers 1-4094, descriptions are printable ASCII
without the characters a CLI treats specially (``?`` opens the help on IOS-style CLIs) and
within the vendor's length limit. Values come back normalized (canonical long interface names,
sorted unique VLAN lists), so commands built from them are predictable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from regional_client.core.errors import ValidationError
from regional_client.drivers.switch.base import PortConfig

_PORT_RE = re.compile(r"([A-Za-z0-9-]*?[A-Za-z-])(\d{1,4}(?:/\d{1,4}){0,3})")
_MAC_HEX = re.compile(r"[0-9a-f]{12}")
_MAC_FORMS = (
    re.compile(r"([0-9a-f]{2})([:-])([0-9a-f]{2})(?:\2[0-9a-f]{2}){4}"),
    re.compile(r"[0-9a-f]{4}([.-])[0-9a-f]{4}\1[0-9a-f]{4}"),
    _MAC_HEX,
)
_VLAN_TEXT = re.compile(r"\d{1,4}")
MAX_PORT_NAME = 64


@dataclass(frozen=True, slots=True)
class NamingRules:
    """A vendor's interface names and description limits (data; see the vendor modules)."""

    types: Mapping[str, str]
    """Lower-case type name or abbreviation → canonical type name (``"gi": "GigabitEthernet"``)."""
    max_index_parts: int = 3
    """How many ``/``-separated numbers an index may have (``1/0/1`` has 3)."""
    description_max: int = 240
    description_forbidden: str = "?"
    short_names: Mapping[str, str] = field(default_factory=dict)
    """Canonical type → the abbreviation the device prints in tables (for display only)."""


def _fail(field_name: str, value: Any, why: str) -> ValidationError:
    shown = value if not isinstance(value, str) else value[:80]
    return ValidationError(f"invalid {field_name}: {why}", field=field_name, value=repr(shown))


def port_name(value: Any, rules: NamingRules) -> str:
    """Return the canonical interface name or raise :class:`ValidationError`."""
    if not isinstance(value, str):
        raise _fail("port", value, "must be a string")
    if not value or len(value) > MAX_PORT_NAME or not value.isascii():
        raise _fail("port", value, f"must be 1-{MAX_PORT_NAME} ASCII characters")
    m = _PORT_RE.fullmatch(value)
    if m is None:
        raise _fail("port", value, "not an interface name (type followed by numbers like 1/0/1)")
    kind = rules.types.get(m.group(1).lower())
    if kind is None:
        known = ", ".join(sorted(set(rules.types.values())))
        raise _fail("port", value, f"unknown interface type {m.group(1)!r} (known: {known})")
    index = m.group(2)
    if index.count("/") + 1 > rules.max_index_parts:
        raise _fail("port", value, f"at most {rules.max_index_parts} index numbers")
    return kind + index


def vlan_id(value: Any, field_name: str = "vlan") -> int:
    """A VLAN ID 1-4094, given as an int or a string of digits only."""
    if isinstance(value, bool):
        raise _fail(field_name, value, "must be an integer 1-4094")
    if isinstance(value, str):
        if not _VLAN_TEXT.fullmatch(value):
            raise _fail(field_name, value, "must be an integer 1-4094")
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= 4094:
        raise _fail(field_name, value, "must be an integer 1-4094")
    return value


def vlan_list(values: Iterable[Any]) -> tuple[int, ...]:
    if isinstance(values, str | bytes):
        raise _fail("vlans", values, "must be a list of VLAN IDs")
    return tuple(sorted({vlan_id(v, "vlans") for v in values}))


def description(value: Any, rules: NamingRules) -> str:
    """Printable ASCII, no control characters, no leading/trailing blanks, within the limit."""
    if not isinstance(value, str):
        raise _fail("description", value, "must be a string")
    if len(value) > rules.description_max:
        raise _fail("description", value, f"longer than {rules.description_max} characters")
    for ch in value:
        if not " " <= ch <= "~":
            raise _fail("description", value, f"character {ch!r} not allowed (printable ASCII)")
        if ch in rules.description_forbidden:
            raise _fail("description", value, f"character {ch!r} not allowed on this device")
    if value != value.strip():
        raise _fail("description", value, "leading or trailing blanks (devices strip them)")
    return value


def mac_address(value: Any) -> str:
    """Accept the usual spellings (``aa:bb..``, ``aa-bb..``, ``aabb.ccdd.eeff``, bare hex) and
    return lower-case ``aa:bb:cc:dd:ee:ff``."""
    if not isinstance(value, str) or len(value) > 17:
        raise _fail("mac", value, "not a MAC address")
    low = value.lower()
    if not any(f.fullmatch(low) for f in _MAC_FORMS):
        raise _fail("mac", value, "not a MAC address")
    hexes = re.sub(r"[^0-9a-f]", "", low)
    return ":".join(hexes[i : i + 2] for i in range(0, 12, 2))


def port_config(cfg: PortConfig | Mapping[str, Any], rules: NamingRules) -> PortConfig:
    """Validate and normalize a requested port configuration."""
    d = cfg.to_dict() if isinstance(cfg, PortConfig) else dict(cfg)
    unknown = set(d) - {"mode", "vlans", "native_vlan", "description"}
    if unknown:
        raise _fail("port_config", sorted(unknown), "unknown keys")
    mode = d.get("mode", "access")
    if mode not in ("access", "trunk"):
        raise _fail("mode", mode, "must be 'access' or 'trunk'")
    raw_vlans: Any = d.get("vlans") or ()
    vlans = vlan_list(raw_vlans)
    native = d.get("native_vlan")
    if mode == "access":
        if len(vlans) != 1:
            raise _fail("vlans", list(vlans), "access mode takes exactly one VLAN")
        if native is not None:
            raise _fail("native_vlan", native, "only for trunk mode")
    elif not vlans:
        raise _fail("vlans", [], "trunk mode needs at least one VLAN")
    desc = d.get("description")
    return PortConfig(
        mode=mode,
        vlans=vlans,
        native_vlan=vlan_id(native, "native_vlan") if native is not None else None,
        description=description(desc, rules) if desc is not None else None,
    )


def vlan_ranges(vlans: Iterable[int], sep: str = ",", to: str = "-") -> str:
    """Compress VLANs for a CLI: ``[10, 11, 12, 20]`` → ``10-12,20`` (or ``10 to 12 20``)."""
    out: list[str] = []
    items = sorted(set(vlans))
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        out.append(str(items[i]) if i == j else f"{items[i]}{to}{items[j]}")
        i = j + 1
    return sep.join(out)


def parse_vlan_ranges(text: str) -> tuple[int, ...]:
    """Inverse of :func:`vlan_ranges` for device output: ``1-3,5`` / ``1 to 3 5`` / ``ALL``."""
    text = text.strip()
    if text.upper() == "ALL":
        return tuple(range(1, 4095))
    if text.lower() in ("", "none"):
        return ()
    words = re.sub(r"\s+to\s+", "-", text).replace(",", " ").split()
    out: set[int] = set()
    for w in words:
        lo, _, hi = w.partition("-")
        a = int(lo)
        out.update(range(a, int(hi) + 1) if hi else (a,))
    return tuple(sorted(out))


__all__ = [
    "NamingRules",
    "description",
    "mac_address",
    "parse_vlan_ranges",
    "port_config",
    "port_name",
    "vlan_id",
    "vlan_list",
    "vlan_ranges",
]
