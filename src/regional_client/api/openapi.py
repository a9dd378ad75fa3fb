"""The OpenAPI document's security schemes and error answers, added to what FastAPI generates.

FastAPI knows the routes' bodies and answers but not how they authenticate (the routes read
the bearer themselves, for speed) nor the errors the one error handler of ``api/app.py`` makes.
This declares two bearer schemes — ``adminToken`` (``/api/v1/admin/...``) and ``agentToken``
(the agent API; ``/report`` takes it optionally: the first report of a boot has none) — and on
every operation the error statuses it can answer, each with the common error body.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ERRORS", "add_security"]

ERRORS: dict[str, str] = {
    "401": "No or invalid bearer token (audited)",
    "403": "Refused: the token's task is not installing, or the call comes from another "
    "address or MAC than the token was issued to (audited)",
    "404": "Unknown serial number or object",
    "409": "Conflict: a lost compare-and-swap, or a second claim of a boot's agent token "
    "(audited)",
    "413": "Request body or hardware inventory too large",
    "422": "Malformed or invalid request (the message names each bad field)",
    "429": "Rate limit of this source address reached; retry later",
    "503": "etcd unavailable",
    "507": "No room for another discovered server record",
}
_PUBLIC = ("/api/v1/health", "/api/v1/metrics")
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "Machine-readable code, e.g. unauthorized"},
        "message": {"type": "string"},
    },
    "additionalProperties": True,
}


def _scheme(description: str) -> dict[str, Any]:
    return {"type": "http", "scheme": "bearer", "description": description}


def _security_of(path: str, tags: list[str]) -> list[dict[str, list[str]]] | None:
    if path.startswith("/api/v1/admin/"):
        return [{"adminToken": []}]
    if "agent" in tags:
        if path == "/api/v1/report":
            return [{}, {"agentToken": []}]
        return [{"agentToken": []}]
    return None


def add_security(doc: dict[str, Any]) -> dict[str, Any]:
    """Declare the schemes and, per operation, its security and error answers (in place)."""
    comps = doc.setdefault("components", {})
    comps.setdefault("schemas", {})["Error"] = _ERROR_SCHEMA
    comps["securitySchemes"] = {
        "adminToken": _scheme("Admin token (its SHA-256 is in api.admin_tokens)"),
        "agentToken": _scheme("This boot's agent token, from the answer to its first report"),
    }
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, ops in doc.get("paths", {}).items():
        for op in ops.values():
            if not isinstance(op, dict):
                continue
            security = _security_of(path, op.get("tags", []))
            if security is not None:
                op["security"] = security
            codes = ["422"] if path in _PUBLIC else list(ERRORS)
            if security is None and path not in _PUBLIC:
                codes = ["403", "404", "413", "422"]  # boot files: no credentials at all
            responses = op.setdefault("responses", {})
            for code in codes:
                responses.setdefault(code, {"description": ERRORS[code], "content": ref})
    return doc
