"""Each coverage-guided fuzz target for a few seconds (CI); ``bench/fuzz.sh`` runs them longer.

A target runs in its own process (libFuzzer owns the process: it exits on the first failure,
writing the input that failed as ``crash-*`` in the working directory, which this test then
shows). The seed corpus holds a few valid messages so mutation starts from the real format.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from regional_client.dhcp import packet as dhcp
from regional_client.tftp import packets as tftp
from tests.helpers.cli import ENV, ROOT

pytest.importorskip("atheris")
SECONDS = 4


def _seeds(target: str) -> list[bytes]:
    if target == "dhcp":
        p = dhcp.DhcpPacket(op=1, xid=7, chaddr=bytes.fromhex("525400123456") + bytes(10),
                            options={53: b"\x01", 55: b"\x01\x03\x06", 93: b"\x00\x07",
                                     60: b"PXEClient:Arch:00007"})  # fmt: skip
        return [dhcp.encode(p)]
    if target == "tftp":
        rrq = tftp.Request(tftp.Opcode.RRQ, b"pxelinux.0", "octet",
                           {"blksize": "1468", "tsize": "0"})  # fmt: skip
        return [tftp.encode_request(rrq), tftp.encode_ack(1), tftp.encode_error(1, "x")]
    return [b"\x00\x00\x10\x00\x00\x00\x00\x00bytes=0-99", b"\x01" * 8 + b"bytes=-5"]


@pytest.mark.parametrize("target", ["dhcp", "tftp", "range"])
def test_fuzz_target(tmp_path: Path, target: str) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, seed in enumerate(_seeds(target)):
        (corpus / f"seed{i}").write_bytes(seed)
    r = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.targets", target, f"-max_total_time={SECONDS}",
         "-rss_limit_mb=2048", "-timeout=5", str(corpus)],
        cwd=ROOT, env={**ENV, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    crashes = [p.name for p in ROOT.glob("crash-*")] + [p.name for p in ROOT.glob("timeout-*")]
    assert r.returncode == 0 and not crashes, (crashes, r.stderr[-3000:])
    runs = [line for line in r.stderr.splitlines() if line.startswith("Done ")]
    assert runs and int(runs[-1].split()[1]) > 1000, r.stderr[-1000:]  # it really ran
