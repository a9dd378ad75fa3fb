"""The sans-IO cores load no network, web, template or metrics library at import.

Each module is imported in a fresh interpreter (nothing else of the product loaded first), then
``sys.modules`` is checked for the heavy libraries the shells use.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

PURE = [
    "regional_client.dhcp.packet",
    "regional_client.dhcp.options",
    "regional_client.dhcp.leases",
    "regional_client.dhcp.responder",
    "regional_client.tftp.packets",
    "regional_client.tftp.session",
    "regional_client.tftp.paths",
    "regional_client.pxe.spec",
]
HEAVY = ["grpc", "aetcd", "fastapi", "starlette", "uvicorn", "jinja2", "prometheus_client", "httpx"]


@pytest.mark.parametrize("module", PURE)
def test_pure_core_imports_no_io_library(module: str) -> None:
    code = (
        f"import importlib, json, sys; importlib.import_module({module!r}); "
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}, check=True,
    )  # fmt: skip
    assert json.loads(out.stdout) == [], f"{module} pulls in {out.stdout.strip()}"


def test_the_check_sees_a_heavy_import() -> None:
    """The test above would notice: the DHCP shell does load prometheus_client and grpc."""
    code = (
        "import importlib, json, sys; importlib.import_module('regional_client.dhcp.service'); "
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}, check=True,
    )  # fmt: skip
    assert "prometheus_client" in json.loads(out.stdout)


def test_peek_helpers_match_the_codec() -> None:
    from regional_client.dhcp import packet as dp

    pkt = dp.DhcpPacket(
        op=dp.BOOTREQUEST, htype=1, hlen=6, hops=0, xid=7, secs=0, flags=0,
        ciaddr=b"\0" * 4, yiaddr=b"\0" * 4, siaddr=b"\0" * 4, giaddr=b"\0" * 4,
        chaddr=bytes.fromhex("525400aabbcc") + b"\0" * 10, sname=b"", file=b"",
        options={dp.Opt.MESSAGE_TYPE: bytes([dp.MessageType.DISCOVER])},
    )  # fmt: skip
    raw = dp.encode(pkt)
    assert dp.peek_type(raw) == dp.MessageType.DISCOVER == dp.decode(raw).msg_type
    assert dp.peek_mac(raw) == "52:54:00:aa:bb:cc"
    assert dp.peek_type(b"\x01" * 10) is None and dp.peek_mac(b"\x01") is None
