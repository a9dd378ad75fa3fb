"""Everything the product knows about agent tokens: make, hash, compare, redact.

A task's agent token authenticates the agent in that server's boot ramdisk (agent API scope).
It is never written to a boot config (TFTP and HTTP boot serve those to anyone on the install
network, SPEC §5): the agent receives it in the answer to its first ``report`` of a boot, and
etcd keeps only its SHA-256 (``Task.agent_session.token_sha256``), so every instance can check
a token and none can recover one from etcd. The token is 192 random bits: a plain hash is
enough (nothing to brute-force), and it costs one microsecond per request.

Only this module creates, hashes or compares one; no other module inspects a token's text.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

FORMAT = re.compile(r"^[A-Za-z0-9._~+/=-]{8,512}$")
"""What a presented token may look like (anything else is refused before hashing)."""
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
NEVER_IN_BOOT_CONFIG = frozenset({"agent_token"})
"""Kernel parameters dropped from every boot config, wherever they come from (SPEC §5)."""
_CMDLINE_PARAM = re.compile(r"(agent_token=)\S+")
HIDDEN = "***"


def new_token() -> str:
    """A fresh random token (URL-safe, 32 characters)."""
    return secrets.token_urlsafe(24)


def token_hash(token: str) -> str:
    """What etcd stores instead of the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_agent_token(presented: str | None, expected_sha256: str | None) -> bool:
    """Constant-time check of a presented token against a stored hash; no hash accepts
    nothing."""
    if not presented or not expected_sha256 or not _SHA256.match(expected_sha256):
        return False
    if not FORMAT.match(presented):
        return False
    return hmac.compare_digest(token_hash(presented), expected_sha256)


def redact_cmdline(text: str) -> str:
    """Hide agent tokens in boot-config text shown to people (configs written by an older
    version may still carry one)."""
    return _CMDLINE_PARAM.sub(r"\1" + HIDDEN, text)


def redact_task(data: dict[str, Any]) -> dict[str, Any]:
    """A task's JSON for display (in place): no token or token hash is ever shown."""
    if data.get("agent_token"):
        data["agent_token"] = HIDDEN
    session = data.get("agent_session")
    if isinstance(session, dict) and session.get("token_sha256"):
        session["token_sha256"] = HIDDEN
    return data


__all__ = [
    "FORMAT",
    "HIDDEN",
    "NEVER_IN_BOOT_CONFIG",
    "check_agent_token",
    "new_token",
    "redact_cmdline",
    "redact_task",
    "token_hash",
]
