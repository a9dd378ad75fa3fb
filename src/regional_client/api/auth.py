"""Bearer-token authentication for the two API scopes.

* **admin** — tokens are configured as SHA-256 hashes (``api.admin_tokens``); a request's token
  is hashed and compared in constant time. The matching token's ``name`` is the audit actor.
* **agent** — see :mod:`regional_client.agentapi.tokens`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from fastapi import Request

from regional_client.config.api import AdminToken
from regional_client.core.errors import AuthError


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


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

