"""The project's exception tree: one root, a few branches, structured fields.

Every error the product raises on purpose derives from :class:`ProvisionError`. Each class
carries an HTTP status hint (``http_status``) so the API layer maps errors to responses in one
place, and keyword fields (device, step, key, ...) so logs and task records can say exactly what
failed without parsing messages.
"""

from __future__ import annotations

from typing import Any


class ProvisionError(Exception):
    """Root of every deliberate error. ``fields`` holds structured context."""

    http_status = 500
    code = "internal_error"

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.code, "message": self.message}
        out.update({k: v for k, v in self.fields.items() if _jsonable(v)})
        return out


def _jsonable(v: Any) -> bool:
    return isinstance(v, str | int | float | bool | list | dict) or v is None


class ConfigError(ProvisionError):
    """A configuration file or value is invalid; the message names the key path."""

    code = "config_error"


class ValidationError(ProvisionError):
    """Input from a client (agent, admin, CLI) is malformed or inconsistent."""

    http_status = 422
    code = "invalid_request"


class AuthError(ProvisionError):
    http_status = 401
    code = "unauthorized"


class ForbiddenError(ProvisionError):
    http_status = 403
    code = "forbidden"


class NotFound(ProvisionError):
    http_status = 404
    code = "not_found"


class Conflict(ProvisionError):
    """A compare-and-swap lost too many times, or the request contradicts stored state."""

    http_status = 409
    code = "conflict"


class InvalidTransition(Conflict):
    """A task status change the state machine does not allow."""

    code = "invalid_transition"


class LimitExceeded(ProvisionError):
    """An input limit refused a request (size 413, rate 429, capacity 507). ``limit`` names
    the limit (the ``limit`` label of ``regional_client_limit_hits_total``)."""

    http_status = 429
    code = "limit_exceeded"

    def __init__(self, message: str, *, limit: str, status: int = 429, **fields: Any) -> None:
        super().__init__(message, limit=limit, **fields)
        self.http_status = status


class StoreError(ProvisionError):
    """etcd is unreachable or answered with an error."""

    http_status = 503
    code = "store_unavailable"


class ProtocolError(ProvisionError):
    """A network peer sent bytes that do not parse (DHCP, TFTP, CLI output...)."""

    http_status = 400
    code = "protocol_error"


class DriverError(ProvisionError):
    """A device driver (switch, BMC) failed. ``device`` names the device."""

    http_status = 502
    code = "driver_error"


class DriverTimeout(DriverError):
    http_status = 504
    code = "driver_timeout"


class DriverAuthError(DriverError):
    code = "driver_auth_failed"


class CommandFailed(DriverError):
    """A device rejected a command. ``output`` holds what it printed."""

    code = "command_failed"


class BmcError(DriverError):
    code = "bmc_error"


class SwitchError(DriverError):
    code = "switch_error"


class StepFailed(ProvisionError):
    """A workflow step gave up. ``step`` names it; ``cause`` is the underlying error text."""

    code = "step_failed"


__all__ = [
    "AuthError",
    "BmcError",
    "CommandFailed",
    "ConfigError",
    "Conflict",
    "DriverAuthError",
    "DriverError",
    "DriverTimeout",
    "ForbiddenError",
    "InvalidTransition",
    "LimitExceeded",
    "NotFound",
    "ProtocolError",
    "ProvisionError",
    "StepFailed",
    "StoreError",
    "SwitchError",
    "ValidationError",
]
