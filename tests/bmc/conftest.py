"""Fixtures for BMC tests: a session-wide IPMI simulator, controllers, log capture."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from regional_client.config.bmc import BmcConfig
from regional_client.core.audit import Audit
from regional_client.core.logs import JsonFormatter
from regional_client.core.metrics import Metrics
from regional_client.drivers.bmc.base import BmcTarget
from regional_client.drivers.bmc.controller import BmcController
from regional_rack.ipmi_sim import IpmiSimulator, SimBmc, SimBmcState

PASSWORD = "Pw-" + secrets.token_hex(8)
"""Every simulated BMC's password: distinctive, so a leak anywhere is found by grep."""
USER = "admin"


@pytest.fixture(scope="session")
def ipmi_sim() -> Iterator[IpmiSimulator]:
    sim = IpmiSimulator.create(8, username=USER, password=PASSWORD)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def sim_bmcs(ipmi_sim: IpmiSimulator) -> list[SimBmc]:
    """All simulated BMCs with fresh state (off, no boot override, counters at 0)."""
    for b in ipmi_sim.bmcs:
        b.state = SimBmcState(b.state.name, USER, PASSWORD)
    return ipmi_sim.bmcs


@pytest.fixture
def sim_bmc(sim_bmcs: list[SimBmc]) -> SimBmc:
    return sim_bmcs[0]


def ipmi_target(bmc: SimBmc, password: str = PASSWORD, sn: str = "SN-IPMI") -> BmcTarget:
    return BmcTarget("127.0.0.1", USER, password, type="ipmi", port=bmc.port, sn=sn)


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def json_log() -> Iterator[LogCapture]:
    """Every log line of the ``regional_client`` tree, formatted as it would be written."""
    root = logging.getLogger("regional_client")
    cap = LogCapture()
    old = root.level
    root.addHandler(cap)
    root.setLevel(logging.DEBUG)
    yield cap
    root.removeHandler(cap)
    root.setLevel(old)


class Harness:
    def __init__(self, ctl: BmcController, audit_path: Path, metrics: Metrics) -> None:
        self.ctl = ctl
        self.audit_path = audit_path
        self.metrics = metrics

    def audit_lines(self) -> list[str]:
        return self.audit_path.read_text().splitlines() if self.audit_path.exists() else []

    def metric(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, {"idc": "t1", **labels})
        return value or 0.0


FAST = {
    "timeout": 8,
    "retries": 2,
    "retry_backoff": 0.1,
    "power_timeout": 3,
    "poll_interval": 0.1,
    "verify_attempts": 2,
    "ipmi": {"retransmits": 4, "retransmit_timeout": 1},
}
"""Short waits, but tolerant of a loaded machine (other test suites share its two cores)."""


@pytest.fixture
def make_harness(tmp_path: Path) -> Iterator[Any]:
    made: list[Harness] = []

    def make(**overrides: Any) -> Harness:
        cfg = BmcConfig.model_validate({**FAST, **overrides})
        metrics = Metrics("t1")
        path = tmp_path / f"audit{len(made)}.jsonl"
        h = Harness(BmcController(cfg, metrics, Audit(path, "t1")), path, metrics)
        made.append(h)
        return h

    yield make
    for h in made:
        h.ctl.audit.close()
