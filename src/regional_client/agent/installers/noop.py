"""``noop`` installer: installs nothing, reports progress a few times (virtual rack / demo)."""

from __future__ import annotations

import asyncio
from typing import Any

from regional_client.agent.installers.base import OpResult, ProgressFn


class NoopInstaller:
    """Pretends to install: ``steps`` progress reports ``delay`` seconds apart.

    params: ``steps`` (default 4, at most 100), ``delay`` seconds (default 0.2, at most 10),
    ``fail`` (true: report failure, to exercise the failure path of a workflow).
    """

    name = "noop"

    def __init__(self, **_options: Any) -> None:
        """Takes (and ignores) the options other installers use, e.g. ``default_target``."""

    async def install(self, params: dict[str, Any], progress: ProgressFn) -> OpResult:
        steps = max(1, min(int(params.get("steps", 4)), 100))
        delay = max(0.0, min(float(params.get("delay", 0.2)), 10.0))
        for i in range(1, steps + 1):
            await asyncio.sleep(delay)
            await progress(100.0 * i / steps, f"noop install step {i}/{steps}")
        if params.get("fail"):
            return OpResult(False, "noop installer asked to fail", exit_code=1)
        return OpResult(True, f"noop install done ({steps} steps)", exit_code=0)
