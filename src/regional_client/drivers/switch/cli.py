"""Vendor CLI profiles and the pure logic around them: command building and output parsing.

A :class:`CliProfile` is data (scrapli's ``PRIVS``/``FAILED_WHEN_CONTAINS`` and
networking-generic-switch's command tuples, STYLE.md recommendations 7-8): command templates,
session setup lines, failure strings, interface naming and the rules that read an interface's
configuration stanza. The functions here turn a validated :class:`PortChange` into the exact
command lines and turn device output into values; they do no I/O, so they are tested on captured
text alone.

Tabular output (MAC tables, interface lists) is parsed with ntc-templates (TextFSM). An
interface's *configuration* stanza (``show running-config interface``/``display
current-configuration interface``) is read with the small per-vendor regex tables below: the
ntc-templates template for IOS ``show running-config interface`` stops with an error on
``switchport`` lines and Huawei/H3C have no template for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ntc_templates.parse import parse_output

from regional_client.core.errors import ProtocolError
from regional_client.drivers.switch.base import MacLocation, PortChange, PortConfig, PortStatus
from regional_client.drivers.switch.validate import NamingRules, parse_vlan_ranges, vlan_ranges


@dataclass(frozen=True, slots=True)
class ConfigRule:
    """One line of an interface stanza: ``regex`` (applied to the stripped line) sets ``key``."""

    regex: str
    key: str
    """``mode``, ``access_vlan``, ``trunk_vlans`` (accumulates), ``native_vlan``,
    ``description``, ``shutdown``."""


@dataclass(frozen=True, slots=True)
class CliProfile:
    name: str
    scrapli_platform: str
    textfsm_platform: str
    naming: NamingRules
    setup: tuple[str, ...]
    """Sent once after login (paging off)."""
    logout: str
    failed_when_contains: tuple[str, ...]
    mac_format: Callable[[str], str]
    show_mac: str
    """Template with ``{mac}`` (device spelling); parsed as :attr:`show_mac_parse`."""
    show_mac_parse: str
    mac_keys: tuple[str, str, str]
    """TextFSM record keys for (mac, port, vlan)."""
    show_config: str
    """Template with ``{port}``: the interface's configuration stanza."""
    config_rules: tuple[ConfigRule, ...]
    default_mode: str
    trunk_default_vlans: tuple[int, ...]
    show_ports: str
    """Interface list with link state; parsed with ntc-templates."""
    status_keys: Mapping[str, str]
    """Our field (port, link, speed, duplex, description) → TextFSM key."""
    up_words: frozenset[str]
    enter_interface: str
    exit_interface: tuple[str, ...]
    access: tuple[str, ...]
    """Templates with ``{vlan}``."""
    trunk: tuple[str, ...]
    """Templates with ``{vlans}`` (already in the device's range syntax) and ``{native}``."""
    leave: Mapping[str, tuple[str, ...]]
    """Lines that undo a mode before switching to the other one (keyed by the old mode)."""
    set_description: str
    clear_description: str
    vlan_range_style: tuple[str, str] = (",", "-")
    save: tuple[tuple[str, str], ...] = ()
    """Save the running config: (command, prompt it answers with, "" for the normal prompt)."""
    empty_markers: tuple[str, ...] = ()
    """Output lines meaning "no entries" that the TextFSM templates do not accept."""
    show_config_all: str | None = None
    """The whole configuration: read once for a batch of ports instead of once per port."""


def cisco_mac(mac: str) -> str:
    h = mac.replace(":", "")
    return f"{h[0:4]}.{h[4:8]}.{h[8:12]}"


def dashed_mac(mac: str) -> str:
    h = mac.replace(":", "")
    return f"{h[0:4]}-{h[4:8]}-{h[8:12]}"


def _port_type(name: str) -> str:
    return re.sub(r"\d+(?:/\d+)*$", "", name)


def canonical_port(profile: CliProfile, name: str) -> str:
    """Device spelling (``Gi1/0/1``, ``GE0/0/1``, ``XGE0/0/1(10G)``) → canonical long name."""
    base = re.sub(r"\(.*\)$", "", name.strip())
    m = re.fullmatch(r"([A-Za-z0-9-]*?[A-Za-z-])(\d+(?:/\d+)*)", base)
    if not m:
        return base
    return profile.naming.types.get(m.group(1).lower(), m.group(1)) + m.group(2)


def change_commands(profile: CliProfile, change: PortChange) -> list[str]:
    """The configuration lines for one validated change, in order."""
    cfg, prev = change.config, change.previous
    out = [profile.enter_interface.format(port=change.port)]
    if prev is not None and prev.mode != cfg.mode:
        out += profile.leave.get(prev.mode, ())
    if cfg.mode == "access":
        out += [t.format(vlan=cfg.vlans[0]) for t in profile.access]
    else:
        sep, to = profile.vlan_range_style
        vlans = vlan_ranges(cfg.vlans, sep, to)
        out += [t.format(vlans=vlans, native=cfg.native_vlan or 1) for t in profile.trunk]
    if cfg.description is not None:
        out.append(
            profile.set_description.format(description=cfg.description)
            if cfg.description
            else profile.clear_description
        )
    out += profile.exit_interface
    return out


def parse_config(profile: CliProfile, port: str, text: str) -> PortConfig:
    """Read an interface stanza into a :class:`PortConfig`."""
    found: dict[str, Any] = {}
    trunk: set[int] = set()
    seen_interface = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.lower().startswith("interface "):
            seen_interface = True
            continue
        for rule in profile.config_rules:
            m = re.fullmatch(rule.regex, line)
            if m is None:
                continue
            if rule.key == "trunk_vlans":
                trunk.update(parse_vlan_ranges(m.group(1)))
                found["trunk_vlans"] = True
            else:
                found[rule.key] = m.group(1) if m.groups() else True
            break
    if not seen_interface:
        raise ProtocolError(f"no configuration stanza for {port}", port=port, output=text[-500:])
    mode = found.get("mode", profile.default_mode)
    desc = found.get("description", "")
    if mode == "trunk":
        vlans = tuple(sorted(trunk)) if "trunk_vlans" in found else profile.trunk_default_vlans
        native = int(found.get("native_vlan", 1))
        return PortConfig("trunk", vlans, native, desc)
    if mode != "access":
        raise ProtocolError(f"{port} is in {mode} mode, not access/trunk", port=port)
    return PortConfig("access", (int(found.get("access_vlan", 1)),), None, desc)


def split_stanzas(text: str) -> dict[str, str]:
    """The ``interface ...`` stanzas of a whole-configuration listing, by interface name as
    printed: a stanza is its ``interface`` line and the indented lines under it."""
    out: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []
    for raw in [*text.splitlines(), ""]:
        if name is not None and raw.startswith((" ", "\t")) and raw.strip():
            lines.append(raw)
            continue
        if name is not None:
            out[name] = "\n".join(lines)
            name = None
        if raw.lower().startswith("interface "):
            name, lines = raw.split(None, 1)[1].strip(), [raw]
    return out


def parse_table(profile: CliProfile, command: str, text: str) -> list[dict[str, Any]]:
    if any(marker in text for marker in profile.empty_markers):
        return []
    try:
        return parse_output(platform=profile.textfsm_platform, command=command, data=text)
    except Exception as exc:  # textfsm raises its own error types for unparsable output
        raise ProtocolError(f"cannot parse {command!r} output: {exc}", output=text[-500:]) from exc


def parse_mac(profile: CliProfile, mac: str, text: str) -> MacLocation | None:
    k_mac, k_port, k_vlan = profile.mac_keys
    want = mac.replace(":", "")
    for rec in parse_table(profile, profile.show_mac_parse, text):
        if re.sub(r"[^0-9a-f]", "", str(rec[k_mac]).lower()) != want:
            continue
        port = rec[k_port]
        port = port[0] if isinstance(port, list) else port
        vlan = re.match(r"\d+", str(rec.get(k_vlan, "")))
        return MacLocation(canonical_port(profile, port), int(vlan.group()) if vlan else None)
    return None


def parse_ports(profile: CliProfile, text: str) -> list[PortStatus]:
    k = profile.status_keys
    kinds = set(profile.naming.types.values())
    out = []
    for rec in parse_table(profile, profile.show_ports, text):
        name = canonical_port(profile, rec[k["port"]])
        if _port_type(name) not in kinds:
            continue  # VLAN interfaces, loopbacks, NULL0...
        link = str(rec[k["link"]]).lower().rstrip(":")
        out.append(
            PortStatus(
                port=name,
                status="up" if link in profile.up_words else "down",
                speed=rec.get(k.get("speed", ""), None) or None,
                duplex=rec.get(k.get("duplex", ""), None) or None,
                description=rec.get(k.get("description", ""), None) or None,
            )
        )
    return out


__all__ = [
    "CliProfile",
    "ConfigRule",
    "canonical_port",
    "change_commands",
    "cisco_mac",
    "dashed_mac",
    "parse_config",
    "parse_mac",
    "parse_ports",
    "parse_table",
]
