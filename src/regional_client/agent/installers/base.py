"""The installer plug-in interface and the result type every operation returns.

An installer turns ``os_install``'s ``params`` into an installed disk. Built-ins live in this
package (``image``, ``noop``); others register through the entry-point group
``regional_client.agent_installers`` (``name = "package.module:Class"``) and are found by name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

ProgressFn = Callable[[float, str], Awaitable[None]]
"""``await progress(percent, message)``: report progress of the running operation."""


@dataclass(frozen=True)
class OpResult:
    """Outcome of one operation, sent back in ``operationComplete``."""

    success: bool
    message: str = ""
    output: str | None = None
    exit_code: int | None = None


class Installer(Protocol):
    """What an ``os_install`` installer provides."""

    name: str

    async def install(self, params: dict[str, Any], progress: ProgressFn) -> OpResult:
        """Install according to ``params``, calling ``progress`` now and then.

        Return a failed :class:`OpResult` for expected failures (bad params, checksum
        mismatch, unreachable image); exceptions are turned into failures by the caller.
        """
        ...


__all__ = ["Installer", "OpResult", "ProgressFn"]
