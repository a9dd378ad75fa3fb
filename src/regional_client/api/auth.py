"""Bearer-token authentication of the admin scope (the agent scope: :mod:`..agentapi.tokens`).

Admin tokens are configured as SHA-256 hashes (``api.admin_tokens``); a request's token is hashed
and compared in constant time. The matching token's ``name`` is the audit actor. Routers take an
:class:`AdminAuth` and declare ``actor: str = Depends(auth)`` on every admin route.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence

from fastapi import Request

from regional_client.config.api import AdminToken
from regional_client.core.audit import Audit
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


class AdminAuth:
    """The admin-scope dependency: resolves to the token's name; 401 (audited) otherwise."""

    def __init__(self, tokens: Sequence[AdminToken], audit: Audit) -> None:
        self.tokens = tuple(tokens)
        self.audit = audit

    def __call__(self, request: Request) -> str:
        try:
            token = bearer(request)
        except AuthError as e:
            self._denied(request, "no bearer token")
            raise e from None
        name = match_admin(token, self.tokens)
        if name is None:
            self._denied(request, "invalid admin token")
            raise AuthError("invalid admin token")
        request.state.actor = name
        return name

    def _denied(self, request: Request, why: str) -> None:
        """Every refusal is audited, with or without a bearer (SPEC §10)."""
        self.audit.record(
            "anonymous",
            "auth.denied",
            request.url.path,
            result=why,
            method=request.method,
            client=request.client.host if request.client else None,
        )
