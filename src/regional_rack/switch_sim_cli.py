"""Command interpreters and output renderers of the simulated switches (see :mod:`.switch_sim`).

Output is shaped after real captures published in ntc-templates' ``tests/`` folder (Catalyst
``show mac address-table`` / ``show interfaces status``, VRP ``display mac-address`` /
``display interface brief``, Comware ``display mac-address`` / ``display interface brief``), so
the same TextFSM templates that read real devices read the simulator. Only the commands the
drivers use (plus their usual abbreviations) are understood; anything else gets the vendor's
"unrecognized command" error, as a real device would answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from regional_rack.switch_sim import SimPort, SimSwitch

ALL_VLANS = frozenset(range(1, 4095))


@dataclass
class Session:
    """Where one CLI session stands: ``exec``, ``config`` or ``if`` (interface view)."""

    mode: str = "exec"
    port: str | None = None
    pending: Callable[[str], str] | None = None
    closed: bool = False
    extra: dict[str, object] = field(default_factory=dict)


def vlan_text_to_set(text: str) -> set[int]:
    words = re.sub(r"\s+to\s+", "-", text.strip()).replace(",", " ").split()
    out: set[int] = set()
    for w in words:
        if w.lower() == "all":
            return set(ALL_VLANS)
        lo, _, hi = w.partition("-")
        out.update(range(int(lo), int(hi) + 1) if hi else (int(lo),))
    return out


def ranges(vlans: set[int] | frozenset[int], sep: str, to: str) -> str:
    items = sorted(vlans)
    out, i = [], 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        out.append(str(items[i]) if i == j else f"{items[i]}{to}{items[j]}")
        i = j + 1
    return sep.join(out)


class VendorCli:
    """Base: dispatch a line through the regex table of the session's current mode."""

    error = "% Invalid input detected at '^' marker."
    short: dict[str, str] = {}

    def __init__(self, sw: SimSwitch) -> None:
        self.sw = sw

    def prompt(self, s: Session) -> str:
        raise NotImplementedError

    def tables(self) -> dict[str, list[tuple[str, Callable[..., str]]]]:
        raise NotImplementedError

    def banner(self) -> str:
        return ""

    def execute(self, s: Session, line: str) -> str:
        if s.pending is not None:
            fn, s.pending = s.pending, None
            return fn(line)
        text = line.strip()
        if not text:
            return ""
        for pattern, fn in self.tables()[s.mode]:
            m = re.fullmatch(pattern, text, re.IGNORECASE)
            if m:
                return fn(s, *m.groups())
        return self.refuse(text)

    def refuse(self, text: str) -> str:
        return " " * (len(self.prompt(Session())) + 1) + "^\n" + self.error

    def port(self, name: str) -> SimPort | None:
        return self.sw.lookup_port(name)

    def enter_interface(self, s: Session, name: str) -> str:
        p = self.port(name)
        if p is None:
            return self.refuse(name)
        s.mode, s.port = "if", p.name
        return ""

    def set(self, s: Session, **changes: object) -> str:
        assert s.port is not None
        self.sw.mutate(s.port, **changes)
        return ""

    def short_name(self, name: str) -> str:
        for long, abbr in self.short.items():
            if name.startswith(long):
                return abbr + name[len(long) :]
        return name


class CiscoCli(VendorCli):
    short = {"GigabitEthernet": "Gi", "TenGigabitEthernet": "Te", "FastEthernet": "Fa"}

    def prompt(self, s: Session) -> str:
        h = self.sw.hostname
        return {"exec": f"{h}#", "config": f"{h}(config)#", "if": f"{h}(config-if)#"}[s.mode]

    def tables(self) -> dict[str, list[tuple[str, Callable[..., str]]]]:
        common: list[tuple[str, Callable[..., str]]] = [
            (r"end", self.end),
            (r"(?:do )?show running-config interface (\S+)", self.show_run_if),
            (r"(?:do )?show running-config", self.show_run),
        ]
        return {
            "exec": [
                (r"terminal (?:length|width) \d+", lambda s: ""),
                (r"show mac address-table address (\S+)", self.show_mac),
                (r"show mac address-table", lambda s: self.show_mac(s, None)),
                (r"show interfaces status", self.show_status),
                (r"show running-config interface (\S+)", self.show_run_if),
                (r"show running-config", self.show_run),
                (r"conf(?:igure)?(?: t(?:erminal)?)?", self.configure),
                (r"write(?: memory)?|copy running-config startup-config", self.write),
                (r"exit|logout|quit", self.close),
            ],
            "config": [
                (r"interface (\S+)", self.enter_interface),
                (r"exit", self.end),
                *common,
            ],
            "if": [
                (r"switchport mode (access|trunk)", lambda s, m: self.set(s, mode=m.lower())),
                (r"switchport access vlan (\d{1,4})", lambda s, v: self.set(s, access_vlan=int(v))),
                (r"switchport trunk native vlan (\d{1,4})", self.native),
                (r"switchport trunk allowed vlan ([\d,\-]+|all|none)", self.allowed),
                (r"no switchport trunk allowed vlan", lambda s: self.set(s, trunk_vlans=ALL_VLANS)),
                (r"no switchport trunk native vlan", lambda s: self.set(s, native_vlan=1)),
                (r"no switchport access vlan", lambda s: self.set(s, access_vlan=1)),
                (r"description (.+)", lambda s, d: self.set(s, description=d)),
                (r"no description", lambda s: self.set(s, description="")),
                (r"shutdown", lambda s: self.set(s, admin_up=False)),
                (r"no shutdown", lambda s: self.set(s, admin_up=True)),
                (r"interface (\S+)", self.enter_interface),
                (r"exit", self.exit_if),
                *common,
            ],
        }

    def native(self, s: Session, vlan: str) -> str:
        return self.set(s, native_vlan=int(vlan))

    def allowed(self, s: Session, text: str) -> str:
        vl = frozenset() if text.lower() == "none" else frozenset(vlan_text_to_set(text))
        return self.set(s, trunk_vlans=vl)

    def configure(self, s: Session) -> str:
        s.mode = "config"
        return "Enter configuration commands, one per line.  End with CNTL/Z."

    def end(self, s: Session) -> str:
        s.mode, s.port = "exec", None
        return ""

    def exit_if(self, s: Session) -> str:
        s.mode, s.port = "config", None
        return ""

    def close(self, s: Session) -> str:
        s.closed = True
        return ""

    def write(self, s: Session) -> str:
        self.sw.saves += 1
        return "Building configuration...\n[OK]"

    def show_mac(self, s: Session, mac: str | None) -> str:
        want = re.sub(r"[^0-9a-f]", "", mac.lower()) if mac else None
        rows = [e for e in self.sw.mac_table if want is None or e[0].replace(":", "") == want]
        out = ["          Mac Address Table", "-" * 43, ""]
        out += ["Vlan    Mac Address       Type        Ports"]
        out += ["----    -----------       --------    -----"]
        for m, vlan, port in rows:
            h = m.replace(":", "")
            name = self.short_name(port)
            out.append(f"{vlan:>4}    {h[:4]}.{h[4:8]}.{h[8:]}    DYNAMIC     {name}")
        out.append(f"Total Mac Addresses for this criterion: {len(rows)}")
        return "\n".join(out)

    def show_status(self, s: Session) -> str:
        out = ["", "Port      Name               Status       Vlan       Duplex  Speed Type"]
        for p in self.sw.ports.values():
            st = "connected" if p.link_up else "notconnect"
            st = st if p.admin_up else "disabled"
            vlan = "trunk" if p.mode == "trunk" else str(p.access_vlan)
            dup, spd = ("a-full", "a-1000") if st == "connected" else ("auto", "auto")
            out.append(
                f"{self.short_name(p.name):<9} {p.description[:18]:<18} {st:<12} {vlan:<10} "
                f"{dup:>6} {spd:>6} 10/100/1000BaseTX"
            )
        return "\n".join(out)

    def stanza(self, p: SimPort) -> list[str]:
        body = [f"interface {p.name}"]
        if p.description:
            body.append(f" description {p.description}")
        if p.access_vlan != 1:
            body.append(f" switchport access vlan {p.access_vlan}")
        if p.native_vlan != 1:
            body.append(f" switchport trunk native vlan {p.native_vlan}")
        if p.trunk_vlans != ALL_VLANS:
            allowed = ranges(p.trunk_vlans, ",", "-") or "none"
            body.append(f" switchport trunk allowed vlan {allowed}")
        body.append(f" switchport mode {p.mode}")
        if not p.admin_up:
            body.append(" shutdown")
        return body

    def show_run_if(self, s: Session, name: str) -> str:
        p = self.sw.read_port(name)
        if p is None:
            return self.refuse(name)
        return self._listing(["!", *self.stanza(p), "end"])

    def show_run(self, s: Session) -> str:
        lines = ["!", "version 15.2", f"hostname {self.sw.hostname}", "!"]
        for p in self.sw.ports.values():
            lines += [*self.stanza(p), "!"]
        return self._listing([*lines, "end"])

    @staticmethod
    def _listing(lines: list[str]) -> str:
        text = "\n".join(lines)
        head = f"Building configuration...\n\nCurrent configuration : {len(text) + 1} bytes"
        return f"{head}\n{text}\n"


class VrpCli(VendorCli):
    """Huawei VRP; :class:`ComwareCli` overrides the few lines where Comware differs."""

    error = "Error: Unrecognized command found at '^' position."
    access_kw = "port default vlan"
    trunk_kw = "port trunk allow-pass vlan"
    paging = r"screen-length 0 temporary"
    system_view_msg = "Enter system view, return user view with Ctrl+Z."

    def prompt(self, s: Session) -> str:
        h = self.sw.hostname
        if s.mode == "exec":
            return f"<{h}>"
        return f"[{h}]" if s.mode == "config" else f"[{h}-{s.port}]"

    def tables(self) -> dict[str, list[tuple[str, Callable[..., str]]]]:
        a, t = re.escape(self.access_kw), re.escape(self.trunk_kw)
        common: list[tuple[str, Callable[..., str]]] = [
            (r"return", self.to_user),
            (r"display current-configuration interface (\S+)", self.show_cfg),
            (r"display current-configuration", self.show_all),
        ]
        return {
            "exec": [
                (self.paging, lambda s: self.paging_msg()),
                (r"display mac-address (\S+)", self.show_mac),
                (r"display mac-address", lambda s: self.show_mac(s, None)),
                (r"display interface brief", self.show_brief),
                (r"display current-configuration interface (\S+)", self.show_cfg),
                (r"display current-configuration", self.show_all),
                (r"system-view|sys", self.system_view),
                (r"save(?: force)?", self.save),
                (r"quit", self.close),
            ],
            "config": [
                (r"interface (\S+)", self.enter_interface),
                (r"quit", self.to_user),
                *common,
            ],
            "if": [
                (r"port link-type (access|trunk)", lambda s, m: self.set(s, mode=m.lower())),
                (a + r" (\d{1,4})", lambda s, v: self.set(s, access_vlan=int(v))),
                (r"undo " + a, lambda s: self.set(s, access_vlan=1)),
                (t + r" ([\d to]+|all)", self.allow),
                (r"undo " + t + r" all", lambda s: self.set(s, trunk_vlans=frozenset())),
                (r"port trunk pvid vlan (\d{1,4})", lambda s, v: self.set(s, native_vlan=int(v))),
                (r"undo port trunk pvid vlan", lambda s: self.set(s, native_vlan=1)),
                (r"description (.+)", lambda s, d: self.set(s, description=d)),
                (r"undo description", lambda s: self.set(s, description="")),
                (r"shutdown", lambda s: self.set(s, admin_up=False)),
                (r"undo shutdown", lambda s: self.set(s, admin_up=True)),
                (r"interface (\S+)", self.enter_interface),
                (r"quit", self.to_system),
                *common,
            ],
        }

    def paging_msg(self) -> str:
        return "Info: The configuration takes effect on the current user terminal interface only."

    def allow(self, s: Session, text: str) -> str:
        assert s.port is not None
        now = set(self.sw.ports[s.port].trunk_vlans) | vlan_text_to_set(text)
        return self.set(s, trunk_vlans=frozenset(now))

    def system_view(self, s: Session) -> str:
        s.mode = "config"
        return self.system_view_msg

    def to_user(self, s: Session) -> str:
        s.mode, s.port = "exec", None
        return ""

    def to_system(self, s: Session) -> str:
        s.mode, s.port = "config", None
        return ""

    def close(self, s: Session) -> str:
        s.closed = True
        return ""

    def save(self, s: Session) -> str:
        def answer(line: str) -> str:
            if line.strip().lower() not in ("y", "yes"):
                return "Info: The configuration is not saved."
            self.sw.saves += 1
            return (
                "Now saving the current configuration to the slot 0.\n"
                "Save the configuration successfully."
            )

        s.pending = answer
        return (
            "The current configuration will be written to the device.\n"
            "Are you sure to continue?[Y/N]"
        )

    def show_mac(self, s: Session, mac: str | None) -> str:
        want = re.sub(r"[^0-9a-f]", "", mac.lower()) if mac else None
        rows = [e for e in self.sw.mac_table if want is None or e[0].replace(":", "") == want]
        rule = "-" * 79
        head = "MAC Address    VLAN/VSI/BD                       Learned-From        Type"
        out = [rule, head, rule]
        for m, vlan, port in rows:
            h = m.replace(":", "")
            name = self.short_name(port)
            out.append(f"{h[:4]}-{h[4:8]}-{h[8:]} {f'{vlan}/-/-':<33} {name:<19} dynamic")
        out += ["", rule, f"Total items displayed = {len(rows)}"]
        return "\n".join(out)

    short = {"GigabitEthernet": "GE", "XGigabitEthernet": "XGE"}

    def show_brief(self, s: Session) -> str:
        out = [
            "PHY: Physical",
            "*down: administratively down",
            "^down: standby",
            "(l): loopback",
            "(s): spoofing",
            "(b): BFD down",
            "(e): ETHOAM down",
            "(v): VirtualPort",
            "InUti/OutUti: input utility/output utility",
            "Interface                   PHY   Protocol  InUti OutUti   inErrors  outErrors",
        ]
        for p in self.sw.ports.values():
            phy = "*down" if not p.admin_up else ("up" if p.link_up else "down")
            proto = "up" if phy == "up" else "down"
            out.append(f"{p.name:<27} {phy:<5} {proto:<8} {'0%':>5} {'0%':>6} {0:>10} {0:>10}")
        out.append(f"{'NULL0':<27} {'up':<5} {'up(s)':<8} {'0%':>5} {'0%':>6} {0:>10} {0:>10}")
        return "\n".join(out)

    def cfg_lines(self, p: SimPort) -> list[str]:
        lines = [f" description {p.description}"] if p.description else []
        lines.append(f" port link-type {p.mode}")
        if p.mode == "trunk":
            if p.native_vlan != 1:
                lines.append(f" port trunk pvid vlan {p.native_vlan}")
            if p.trunk_vlans and p.trunk_vlans != {1}:
                lines.append(f" {self.trunk_kw} {ranges(p.trunk_vlans, ' ', ' to ')}")
        elif p.access_vlan != 1:
            lines.append(f" {self.access_kw} {p.access_vlan}")
        return lines

    def stanza(self, p: SimPort) -> list[str]:
        shut = [" shutdown"] if not p.admin_up else []
        return [f"interface {p.name}", *self.cfg_lines(p), *shut]

    def show_cfg(self, s: Session, name: str) -> str:
        p = self.sw.read_port(name)
        if p is None:
            return self.refuse(name)
        return "\n".join(["#", *self.stanza(p), "#", "return"])

    def show_all(self, s: Session) -> str:
        lines = ["#", f" sysname {self.sw.hostname}", "#"]
        for p in self.sw.ports.values():
            lines += [*self.stanza(p), "#"]
        return "\n".join([*lines, "return"])


class ComwareCli(VrpCli):
    error = " % Unrecognized command found at '^' position."
    access_kw = "port access vlan"
    trunk_kw = "port trunk permit vlan"
    paging = r"screen-length disable"
    system_view_msg = "System View: return to User View with Ctrl+Z."
    short = {"GigabitEthernet": "GE", "Ten-GigabitEthernet": "XGE"}

    def paging_msg(self) -> str:
        return ""

    def save(self, s: Session) -> str:
        self.sw.saves += 1
        return (
            "Validating file. Please wait...\n"
            "Saved the current configuration to mainboard device successfully."
        )

    def show_mac(self, s: Session, mac: str | None) -> str:
        want = re.sub(r"[^0-9a-f]", "", mac.lower()) if mac else None
        rows = [e for e in self.sw.mac_table if want is None or e[0].replace(":", "") == want]
        out = ["MAC ADDR       VLAN ID  STATE          PORT INDEX               AGING TIME(s)"]
        for m, vlan, port in rows:
            h = m.replace(":", "")
            out.append(f"{h[:4]}-{h[4:8]}-{h[8:]} {vlan:<8} {'Learned':<14} {port:<24} AGING")
        return "\n".join(out)

    def show_brief(self, s: Session) -> str:
        out = [
            "Brief information on interfaces in bridge mode:",
            "Link: ADM - administratively down; Stby - standby",
            "Speed: (a) - auto",
            "Duplex: (a)/A - auto; H - half; F - full",
            "Type: A - access; T - trunk; H - hybrid",
            "Interface            Link Speed     Duplex Type PVID Description",
        ]
        for p in self.sw.ports.values():
            link = "ADM" if not p.admin_up else ("UP" if p.link_up else "DOWN")
            speed, dup = ("1G(a)", "F(a)") if link == "UP" else ("auto", "A")
            pvid = p.native_vlan if p.mode == "trunk" else p.access_vlan
            kind = p.mode[0].upper()
            row = f"{self.short_name(p.name):<20} {link:<4} {speed:<9} {dup:<6} {kind:<4} {pvid:<4}"
            out.append(f"{row} {p.description}".rstrip())
        return "\n".join(out)

    def stanza(self, p: SimPort) -> list[str]:
        shut = [" shutdown"] if not p.admin_up else []
        return [f"interface {p.name}", " port link-mode bridge", *self.cfg_lines(p), *shut]

    def cfg_lines(self, p: SimPort) -> list[str]:
        out = super().cfg_lines(p)
        return [ln for ln in out if ln != " port link-type access"]  # Comware omits the default


CLI_CLASSES: dict[str, type[VendorCli]] = {
    "cisco_ios": CiscoCli,
    "huawei_vrp": VrpCli,
    "h3c_comware": ComwareCli,
}

__all__ = ["ALL_VLANS", "CLI_CLASSES", "Session", "VendorCli", "replace"]
