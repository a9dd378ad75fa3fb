"""Network namespaces for DHCP tests: created here, used only here, always deleted.

Nothing touches the host's interfaces: veth pairs are created directly inside the test's own
namespaces (``ip -n NS link add ... peer ... netns OTHER``). :func:`in_netns` runs a function on a
short-lived thread that has entered a namespace, so the test process can open the server's
sockets inside it while talking to etcd on the host's loopback from the main thread.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_seq = itertools.count()


def have_netns() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=30)


def unique(prefix: str) -> str:
    """A namespace/interface name unique to this process (<= 15 characters)."""
    return f"{prefix}{os.getpid() % 100000}{next(_seq)}"[:15]


class Netns:
    def __init__(self, name: str) -> None:
        self.name = name
        sh("ip", "netns", "add", name)
        self.ip("link", "set", "lo", "up")

    def ip(self, *args: str) -> None:
        sh("ip", "-n", self.name, *args)

    def cmd(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *args]

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        return in_netns(self.name, fn, *args)

    def delete(self) -> None:
        sh("ip", "netns", "pids", self.name, check=False)
        sh("ip", "netns", "del", self.name, check=False)


def veth(a: Netns, a_if: str, b: Netns, b_if: str) -> None:
    """A veth pair with one end in each namespace, both up."""
    a.ip("link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b.name)
    a.ip("link", "set", a_if, "up")
    b.ip("link", "set", b_if, "up")


def in_netns(name: str, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on a fresh thread inside namespace ``name``; return its result.

    Sockets created there stay in that namespace after the thread ends.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns({name}): {os.strerror(err)}")
            box["result"] = fn(*args)
        except BaseException as e:
            box["error"] = e
        finally:
            os.close(fd)

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["result"]
