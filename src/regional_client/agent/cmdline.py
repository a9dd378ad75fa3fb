"""Agent settings from the kernel command line (``/proc/cmdline``), overridden by flags.

The boot configuration the regional client writes (pxelinux/GRUB/iPXE) appends parameters such as::

    regional_url=http://10.0.0.1:8081 sn=SN-001 BOOTIF=01-aa-bb-cc-dd-ee-ff

Recognised keys: ``regional_url``, ``sn`` (``auto`` or absent: taken from DMI),
``mac`` (the install MAC), ``BOOTIF`` (pxelinux ``IPAPPEND 2`` form ``01-aa-bb-...``),
``agent_installer`` (default os_install installer, e.g. ``noop`` for the virtual rack),
``agent_reboot`` (reboot command; ``none`` disables) and ``agent_once`` (``1``: one pass).

Parsing follows the kernel's own rules closely enough for these values: words split on
whitespace, ``key=value``, double quotes group (``key="a b"``), a bare ``--`` ends the kernel's
part (everything after it belongs to init and is ignored here).

No token comes from here (SPEC §5: no secret in a boot config): an ``agent_token`` parameter is
ignored. The agent receives its token in the answer to its first report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from regional_client.core.errors import ValidationError

_MAC_RE = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$")


def parse_cmdline(text: str) -> dict[str, str]:
    """Split a kernel command line into ``{key: value}`` (flags without ``=`` map to ``""``).

    A later occurrence of a key wins, as it does for the kernel's own ``__setup`` parameters.
    """
    out: dict[str, str] = {}
    for word in _split_words(text):
        if word == "--":
            break
        key, sep, value = word.partition("=")
        if not key:
            continue
        out[key] = value if sep else ""
    return out


def _split_words(text: str) -> list[str]:
    words: list[str] = []
    cur: list[str] = []
    quoted = False
    in_word = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
            in_word = True
        elif ch.isspace() and not quoted:
            if in_word:
                words.append("".join(cur))
                cur, in_word = [], False
        else:
            cur.append(ch)
            in_word = True
    if in_word:
        words.append("".join(cur))
    return words


def normalize_mac(value: str) -> str:
    """``AA-BB-..``/``aa:bb:..``/pxelinux ``01-aa-bb-..`` → ``aa:bb:cc:dd:ee:ff``."""
    v = value.strip().lower()
    if len(v) == 20 and v[:3] == "01-":
        v = v[3:]
    if not _MAC_RE.match(v):
        raise ValidationError(f"not a MAC address: {value!r}", field="mac")
    return v.replace("-", ":")


@dataclass
class AgentSettings:
    """Everything the agent needs to talk to its regional client (no token: that comes from
    the first report's answer and lives in the client only)."""

    regional_url: str | None = None
    sn: str | None = None
    mac: str | None = None
    installer: str | None = None
    reboot_cmd: str | None = None
    once: bool = False
    from_boot: bool = False
    """True when ``regional_url`` came from the kernel command line (a provisioning boot)."""

    def missing(self) -> list[str]:
        """Names of the settings the operation loop cannot run without."""
        need = {"regional_url": self.regional_url, "sn": self.sn, "mac": self.mac}
        return [name for name, value in need.items() if not value]


def settings_from_cmdline(params: dict[str, str]) -> AgentSettings:
    """Build :class:`AgentSettings` from parsed kernel parameters (no flags applied yet)."""
    mac = None
    for key in ("mac", "BOOTIF"):
        if params.get(key):
            mac = normalize_mac(params[key])
            break
    sn = params.get("sn") or None
    reboot = params.get("agent_reboot")
    return AgentSettings(
        regional_url=(params.get("regional_url") or "").rstrip("/") or None,
        sn=None if sn == "auto" else sn,
        mac=mac,
        installer=params.get("agent_installer") or None,
        reboot_cmd=reboot,
        once=params.get("agent_once", "") in ("1", "true", "yes"),
        from_boot=bool(params.get("regional_url")),
    )


def read_cmdline(path: Path) -> dict[str, str]:
    """Parse the kernel command line file at ``path``; a missing file gives ``{}``."""
    try:
        return parse_cmdline(path.read_text(encoding="utf-8", errors="replace"))
    except FileNotFoundError:
        return {}


__all__ = [
    "AgentSettings",
    "normalize_mac",
    "parse_cmdline",
    "read_cmdline",
    "settings_from_cmdline",
]
