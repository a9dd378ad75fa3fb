"""Everything the product knows about agent tokens: make, check the format, compare, redact.

A task's agent token authenticates the agent in that server's boot ramdisk (agent API scope).
Only this module creates, compares or hides one; no other module inspects a token's text.
"""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Any

FORMAT = re.compile(r"^[A-Za-z0-9._~+/=-]{8,512}$")
"""What a token may look like (URL- and kernel-command-line-safe)."""
_CMDLINE_PARAM = re.compile(r"(agent_token=)\S+")
HIDDEN = "***"


def new_token() -> str:
    """A fresh random token (URL- and kernel-command-line-safe)."""
    return secrets.token_urlsafe(24)


def check_agent_token(presented: str, expected: str | None) -> bool:
    """Constant-time comparison; a task without a token accepts nothing."""
    if not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


def redact_cmdline(text: str) -> str:
    """Hide agent tokens in boot-config text shown to people."""
    return _CMDLINE_PARAM.sub(r"\1" + HIDDEN, text)


def redact_task(data: dict[str, Any]) -> dict[str, Any]:
    """A task's JSON for display (in place): the agent token is never shown."""
    if data.get("agent_token"):
        data["agent_token"] = HIDDEN
    return data


__all__ = ["FORMAT", "HIDDEN", "check_agent_token", "new_token", "redact_cmdline", "redact_task"]
