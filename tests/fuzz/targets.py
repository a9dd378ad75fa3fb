"""Coverage-guided fuzz targets (atheris, libFuzzer) for the parsers that read the network.

Each target takes raw bytes and checks the parser's contract:

* ``dhcp`` — :func:`regional_client.dhcp.packet.decode` either raises ``MalformedPacket`` or
  returns a packet that encodes to bytes which decode to the same packet;
* ``tftp`` — :func:`regional_client.tftp.packets.decode` either raises ``ProtocolError`` or
  returns a packet, and a decoded request re-encodes to an equal request;
* ``range`` — :func:`regional_client.httpboot.response.parse_range` never raises and returns
  ``None``, ``"unsatisfiable"`` or ``(start, end)`` with ``0 <= start < end <= size``.

Run one: ``python -m tests.fuzz.targets dhcp -max_total_time=60 CORPUS_DIR`` (libFuzzer flags).
CI runs each for a few seconds (``tests/fuzz/test_fuzz_targets.py``); ``bench/fuzz.sh`` longer.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import atheris

with atheris.instrument_imports(include=["regional_client"]):
    from regional_client.core.errors import ProtocolError
    from regional_client.dhcp import packet as dhcp
    from regional_client.httpboot.response import parse_range
    from regional_client.tftp import packets as tftp


def fuzz_dhcp(data: bytes) -> None:
    try:
        p = dhcp.decode(data)
    except dhcp.MalformedPacket:
        return
    again = dhcp.decode(dhcp.encode(p))
    assert again == p, (p, again)


def fuzz_tftp(data: bytes) -> None:
    try:
        p = tftp.decode(data)
    except ProtocolError:
        return
    if isinstance(p, tftp.Request):
        assert tftp.decode(tftp.encode_request(p)) == p


def fuzz_range(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    size = fdp.ConsumeIntInRange(0, 1 << 40)
    header = fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes())
    got = parse_range(header, size)
    if isinstance(got, tuple):
        start, end = got
        assert 0 <= start < end <= size, (header, size, got)
    else:
        assert got in (None, "unsatisfiable"), got


TARGETS: dict[str, Callable[[bytes], None]] = {
    "dhcp": fuzz_dhcp,
    "tftp": fuzz_tftp,
    "range": fuzz_range,
}


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: {argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options] [corpus dirs]")
    atheris.Setup([argv[0], *argv[2:]], TARGETS[argv[1]])
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
