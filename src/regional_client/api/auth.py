"""Bearer-token authentication for the two API scopes.

* **admin** — tokens are configured as SHA-256 hashes (``api.admin_tokens``); a request's token
  is hashed and compared in constant time. The matching token's ``name`` is the audit actor.
* **agent** — each task carries a random ``agent_token``; agent calls must present the token of
  the task whose serial they name.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from fastapi import Request

from regional_client.config.api import AdminToken
from regional_client.errors import AuthError


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh random token (URL- and kernel-command-line-safe)."""
    return secrets.token_urlsafe(24)


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthError("missing bearer token (Authorization: Bearer <token>)")
    return value.strip()


def match_admin(token: str, tokens: Iterable[AdminToken]) -> str | None:
    """The name of the admin token matching ``token``, or None."""
    digest = hash_token(token)
    found = None
    for t in tokens:
        if hmac.compare_digest(digest, t.sha256):
            found = t.name
    return found


def check_agent_token(presented: str, expected: str | None) -> bool:
    if not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())
