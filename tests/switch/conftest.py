"""Fixtures: simulated switches on 127.0.0.1 (real SSH) and drivers connected to them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from regional_client.drivers.registry import SWITCH_DRIVERS
from regional_client.drivers.switch.base import ConnectionParams
from regional_rack.switch_sim import SimSwitch, start_switches

VENDORS = ["cisco_ios", "huawei_vrp", "h3c_comware"]
SERVER_MAC = "0c:c4:7a:12:34:56"


def params_for(sw: SimSwitch, name: str = "sw1") -> ConnectionParams:
    return ConnectionParams(
        host=sw.host,
        port=sw.port,
        username=sw.username,
        password=sw.password,
        timeout=10,
        name=name,
    )


def sent_lines(sw: SimSwitch) -> list[str]:
    """What the device received, without the bare returns scrapli uses to find the prompt."""
    return [c for c in sw.commands if c]


@pytest.fixture(params=VENDORS)
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[SimSwitch]:
    [sw] = await start_switches(1, request.param, ports=8, macs=[(SERVER_MAC, 5)])
    yield sw
    await sw.stop()


@pytest.fixture
async def driver(sim: SimSwitch):  # type: ignore[no-untyped-def]
    d = SWITCH_DRIVERS.get(sim.vendor)(params_for(sim))
    yield d
    await d.disconnect()
