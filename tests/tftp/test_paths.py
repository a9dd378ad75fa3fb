"""Path safety: 38 attack names refused by the resolver and over the wire, none served."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from regional_client.core.errors import ForbiddenError, NotFound
from regional_client.tftp.client import TftpClientError, fetch
from regional_client.tftp.paths import SafeRoot
from tests.tftp.conftest import ServerFactory

SECRET = b"TOPSECRET-outside-the-root"

ATTACKS: list[bytes] = [
    b"../secret.txt",
    b"../../etc/passwd",
    b"/../secret.txt",
    b"pxelinux.cfg/../../secret.txt",
    b"./../secret.txt",
    b"..",
    b"../",
    b"//../secret.txt",
    b"..\\secret.txt",
    b"pxelinux.cfg\\..\\..\\secret.txt",
    b"C:\\Windows\\win.ini",
    b"%2e%2e/secret.txt",
    b"%2e%2e%2fsecret.txt",
    b"..%2fsecret.txt",
    b"....//secret.txt",
    b"/etc/passwd",
    b"/etc/shadow",
    b"/proc/self/environ",
    b"/proc/self/root/etc/passwd",
    b"link_out",
    b"abs_link",
    b"dir_out/secret.txt",
    b"fifo",
    b"devnull",
    b"pxelinux.cfg",
    b".secret",
    b"pxelinux.cfg/.hidden",
    b"big.bin\x00../secret.txt",
    b"../secret.txt\x00big.bin",
    b"\xc0\xae\xc0\xae/secret.txt",
    b"..%00/secret.txt",
    b"",
    b"/",
    b"a" * 2000,
    b"pxelinux.cfg/\x01default",
    b"..;/secret.txt",
    b"dir_out/../secret.txt",
    "\u2025/secret.txt".encode(),
    "\uff0e\uff0e/secret.txt".encode(),
    b"dir_in/../../secret.txt",
]


@pytest.fixture
def attack_root(root: Path) -> Path:
    outside = root.parent
    (outside / "secret.txt").write_bytes(SECRET)
    (root / ".secret").write_bytes(SECRET)
    (root / "pxelinux.cfg" / ".hidden").write_bytes(SECRET)
    (root / "link_out").symlink_to("../secret.txt")
    (root / "abs_link").symlink_to("/etc/passwd")
    (root / "dir_out").symlink_to(outside)
    (root / "dir_in").symlink_to("pxelinux.cfg")
    (root / "link_in").symlink_to("small.txt")
    os.mkfifo(root / "fifo")
    os.mknod(root / "devnull", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    (root / "pxelinux.cfg" / "01-aa-bb-cc-dd-ee-ff").write_text("DEFAULT x\n")
    return root


def test_at_least_30_attacks() -> None:
    assert len(ATTACKS) >= 30


@pytest.mark.parametrize("name", ATTACKS, ids=[repr(a)[:40] for a in ATTACKS])
def test_resolver_refuses(attack_root: Path, name: bytes) -> None:
    with pytest.raises((NotFound, ForbiddenError)):
        f = SafeRoot(attack_root).open(name)
        os.close(f.fd)


def test_resolver_allows_legit_names(attack_root: Path) -> None:
    r = SafeRoot(attack_root)
    for name, want in [
        ("pxelinux.cfg/default", "pxelinux.cfg/default"),
        ("/pxelinux.cfg/default", "pxelinux.cfg/default"),
        ("pxelinux.cfg//default", "pxelinux.cfg/default"),
        ("./small.txt", "small.txt"),
        ("link_in", "link_in"),
        ("dir_in/default", "dir_in/default"),
        ("pxelinux.cfg/01-AA-BB-CC-DD-EE-FF", "pxelinux.cfg/01-aa-bb-cc-dd-ee-ff"),
    ]:
        f = r.open(name)
        os.close(f.fd)
        assert f.name == want


def test_listing_skips_unsafe_entries(attack_root: Path) -> None:
    names = {e.name for e in SafeRoot(attack_root).list()}
    assert {"big.bin", "small.txt", "link_in", "pxelinux.cfg/default"} <= names
    assert not names & {"link_out", "abs_link", "fifo", "devnull", ".secret"}
    assert not any(n.startswith("dir_out") for n in names)


async def test_server_refuses_every_attack(attack_root: Path, tftp_server: ServerFactory) -> None:
    server = await tftp_server()
    host, port = server.address  # type: ignore[misc]

    async def try_one(name: bytes) -> tuple[bytes, object]:
        try:
            r = await fetch(host, port, name, timeout=0.3, retries=1)
        except TftpClientError as e:
            return name, e.fields.get("code", "timeout")
        return name, r

    results = await asyncio.gather(*(try_one(a) for a in ATTACKS))
    for name, outcome in results:
        assert outcome in (1, 2, "timeout"), (name, outcome)
    # the malformed-on-the-wire ones (embedded NUL) are ignored; all others get an error
    assert sum(1 for _, o in results if o == "timeout") <= 3
    assert not server.transfers


async def test_server_serves_upper_case_mac(attack_root: Path, tftp_server: ServerFactory) -> None:
    server = await tftp_server()
    host, port = server.address  # type: ignore[misc]
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--max-time", "20", f"tftp://{host}:{port}/pxelinux.cfg/01-AA-BB-CC-DD-EE-FF",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0 and out == b"DEFAULT x\n"
