"""Wiring of the optional components (DHCP, TFTP/PXE/HTTP boot, BMC, switch, workflow).

Each builder looks at its config section, constructs its service with explicit dependencies,
registers its admin router and health check on the runtime, and returns the service (or None
when the section is disabled). :class:`~regional_client.server.RegionalClient` starts them in
the order returned and stops them in reverse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from regional_client.drivers.bmc.component import build_bmc
from regional_client.runtime import Runtime

Builder = Callable[[Runtime], Any]

BUILDERS: list[Builder] = [build_bmc]


def build_components(rt: Runtime) -> list[Any]:
    services = []
    for build in BUILDERS:
        svc = build(rt)
        if svc is not None:
            services.append(svc)
    return services
