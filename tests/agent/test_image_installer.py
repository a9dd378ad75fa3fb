"""``image`` installer against a real HTTP server (busybox httpd, with Range support), onto
files and a real loop block device; a dropped connection resumes with a Range request."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import lzma
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from regional_client.agent.client import AgentClient, Backoff
from regional_client.agent.installers import ImageInstaller
from regional_client.agent.loop import LoopConfig, Outcome, run_loop
from regional_client.agent.operations import OpContext
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from tests.agent.conftest import MAC, Regional

IMAGE = os.urandom(3 * 1024 * 1024 + 123)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def www(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """busybox httpd on a free loopback port serving a folder with the test images."""
    root = tmp_path_factory.mktemp("www")
    (root / "disk.raw").write_bytes(IMAGE)
    (root / "disk.raw.gz").write_bytes(gzip.compress(IMAGE, compresslevel=1))
    (root / "disk.raw.xz").write_bytes(lzma.compress(IMAGE, preset=0))
    for _ in range(5):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen(
            ["busybox", "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", str(root)],
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.02)
        if proc.poll() is None:
            break
    else:
        pytest.fail("busybox httpd did not start")
    yield f"http://127.0.0.1:{port}", root
    proc.kill()
    proc.wait()


class Progress:
    def __init__(self) -> None:
        self.seen: list[tuple[float, str]] = []

    async def __call__(self, pct: float, msg: str) -> None:
        self.seen.append((pct, msg))


def _fast() -> ImageInstaller:
    return ImageInstaller(retry_delay=0.01, chunk_size=64 * 1024)


@pytest.mark.parametrize("name", ["disk.raw", "disk.raw.gz", "disk.raw.xz"])
async def test_image_to_file(www: tuple[str, Path], tmp_path: Path, name: str) -> None:
    url, root = www
    target = tmp_path / "target.img"
    progress = Progress()
    params = {"url": f"{url}/{name}", "sha256": _sha((root / name).read_bytes()),
              "target": str(target), "progress_step": 20}  # fmt: skip
    result = await _fast().install(params, progress)
    assert result.success, result.message
    assert result.exit_code == 0 and "sha256 verified" in result.message
    assert target.read_bytes() == IMAGE
    pcts = [p for p, _ in progress.seen]
    assert pcts == sorted(pcts) and pcts[-1] == 100.0 and 3 <= len(pcts) <= 7


@pytest.fixture
def loop_device(tmp_path: Path) -> Iterator[str]:
    """A real block device: a 4 MiB file (all 0xff) attached with losetup, detached after."""
    if shutil.which("losetup") is None or os.geteuid() != 0:
        pytest.fail("needs root and losetup (util-linux) to attach a loop device")
    backing = tmp_path / "backing.img"
    backing.write_bytes(b"\xff" * (4 * 1024 * 1024))
    dev = subprocess.run(
        ["losetup", "--find", "--show", str(backing)], check=True, capture_output=True, text=True
    ).stdout.strip()
    yield dev
    subprocess.run(["losetup", "-d", dev], check=False)


async def test_image_to_loop_block_device(www: tuple[str, Path], loop_device: str) -> None:
    url, _ = www
    installer = ImageInstaller(default_target=loop_device, retry_delay=0.01)
    result = await installer.install({"url": f"{url}/disk.raw", "sha256": _sha(IMAGE)}, Progress())
    assert result.success, result.message
    with open(loop_device, "rb") as f:
        assert f.read(len(IMAGE)) == IMAGE
        assert f.read(16) == b"\xff" * 16  # the rest of the disk untouched
    assert Path(loop_device).exists()  # a device node is never unlinked like a file target


async def test_checksum_mismatch_fails_and_removes_file(
    www: tuple[str, Path], tmp_path: Path
) -> None:
    url, _ = www
    target = tmp_path / "t.img"
    result = await _fast().install(
        {"url": f"{url}/disk.raw", "sha256": "0" * 64, "target": str(target)}, Progress()
    )
    assert not result.success and "sha256 mismatch" in result.message
    assert _sha(IMAGE) in result.message and not target.exists()


async def test_http_404_fails_clearly(www: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = www
    result = await _fast().install(
        {"url": f"{url}/nope.raw", "sha256": "0" * 64, "target": str(tmp_path / "t")}, Progress()
    )
    assert not result.success and "404" in result.message


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"sha256": "0" * 64, "target": "/tmp/x"}, "params.url is required"),
        ({"url": "ftp://x/y", "sha256": "0" * 64, "target": "/tmp/x"}, "params.url"),
        ({"url": "http://127.0.0.1:1/a", "sha256": "abc", "target": "/tmp/x"}, "64 hex"),
        ({"url": "http://127.0.0.1:1/a", "sha256": "0" * 64}, "no target"),
        ({"url": "http://127.0.0.1:1/a", "sha256": "0" * 64, "target": "/tmp/x",
          "compression": "zstd"}, "unknown compression"),
    ],
)  # fmt: skip
async def test_bad_params(params: dict[str, str], needle: str) -> None:
    result = await ImageInstaller().install(params, Progress())
    assert not result.success and needle in result.message and result.exit_code == 2


async def test_refuses_mounted_target(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/sda2 / ext4 rw 0 0\nproc /proc proc rw 0 0\n")
    inst = ImageInstaller(mounts_file=mounts)
    params = {"url": "http://127.0.0.1:1/a", "sha256": "0" * 64, "target": "/dev/sda"}
    result = await inst.install(params, Progress())
    assert not result.success and "refusing to overwrite mounted /dev/sda" in result.message
    params["target"] = "/dev/sdz-agent-test-absent"
    result = await inst.install(params, Progress())
    assert result.message == "cannot open /dev/sdz-agent-test-absent: No such file or directory"
    assert not Path(params["target"]).exists()


class CuttingProxy:
    """Forwards to ``upstream``; cuts the first connection after ``cut`` response bytes."""

    def __init__(self, upstream_port: int, cut: int) -> None:
        self.upstream_port = upstream_port
        self.cut = cut
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        first = not self.requests
        head = await cr.readuntil(b"\r\n\r\n")
        self.requests.append(head)
        ur, uw = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        uw.write(head)
        await uw.drain()
        sent = 0
        while data := await ur.read(65536):
            if first and sent + len(data) > self.cut:
                cw.write(data[: self.cut - sent])
                break
            cw.write(data)
            sent += len(data)
            await cw.drain()
        await cw.drain()
        cw.transport.abort() if first else cw.close()
        uw.close()


async def test_dropped_connection_resumes_with_range(www: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = www
    port = int(url.rsplit(":", 1)[1])
    proxy = CuttingProxy(port, cut=1024 * 1024)
    async with proxy as pport:
        target = tmp_path / "t.img"
        result = await _fast().install(
            {"url": f"http://127.0.0.1:{pport}/disk.raw", "sha256": _sha(IMAGE),
             "target": str(target)}, Progress(),
        )  # fmt: skip
    assert result.success, result.message
    assert target.read_bytes() == IMAGE
    assert len(proxy.requests) == 2
    assert b"range: bytes=" in proxy.requests[1].lower()
    assert b"range" not in proxy.requests[0].lower()


async def test_truncated_compressed_stream_fails(www: tuple[str, Path], tmp_path: Path) -> None:
    url, root = www
    cut = (root / "disk.raw.gz").read_bytes()[:100_000]
    (root / "cut.raw.gz").write_bytes(cut)
    target = tmp_path / "t.img"
    result = await _fast().install(
        {"url": f"{url}/cut.raw.gz", "sha256": _sha(cut), "target": str(target)}, Progress()
    )
    assert not result.success and "ends early" in result.message and not target.exists()


async def test_os_install_with_image_through_the_real_regional_client(
    www: tuple[str, Path], regional: Regional, etcd_store: EtcdStore, keys: Keys, tmp_path: Path
) -> None:
    """The image's URL, checksum and target come from the task's ``operation_params``."""
    url, root = www
    sn = "SN-IMAGE-1"
    target = tmp_path / "disk.img"
    params = {
        "installer": "image",
        "url": f"{url}/disk.raw.xz",
        "sha256": _sha((root / "disk.raw.xz").read_bytes()),
        "target": str(target),
    }
    await regional.add_task(
        etcd_store, keys, sn, operations=["os_install"], operation_params={"os_install": params}
    )
    async with AgentClient(regional.url, sn, backoff=Backoff(0.05, maximum=0.2)) as c:
        outcome = await run_loop(c, {}, MAC, OpContext(c), LoopConfig(reboot_cmd=None))
    assert outcome is Outcome.REBOOT
    assert target.read_bytes() == IMAGE
    kv = await etcd_store.get(keys.task(sn))
    assert kv is not None
    res = kv.value["results"]["os_install"]
    assert res["status"] == "done" and "sha256 verified" in res["message"]
