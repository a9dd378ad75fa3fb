"""Start fake-switches (PyPI, Internap's switch simulator) for the tests, with three patches.

fake-switches 1.5 is unmaintained for Python 3; as installed here (``pip install --no-deps
fake-switches`` plus a current Twisted) its Cisco model needs:

1. **enable**: ``cmd/main.py`` passes the enable password as ``bytes`` while the shell compares
   it with the decoded ``str`` line, so ``enable`` always answers "% Access denied". We build
   the switch core ourselves and pass ``str``.
2. **end**: the Cisco configuration processors have no ``do_end``; scrapli (and every operator)
   leaves configuration mode with ``end``. We add one: the interface processor does not know
   ``end``, falls back to its parent (configuration), whose ``do_end`` finishes configuration
   mode, which returns the session to the enable prompt.
3. **listen on a free port**: ``listenTCP(port=0)`` on 127.0.0.1, and the chosen port is printed
   on stdout for the parent process. Credentials come on stdin (never argv or environment).

``show mac address-table`` still prints nothing in this model, so tests use fake-switches for
the configure / read-back path only (MAC lookups are tested against our own simulator and
snmpsim). Run as ``python tests/switch/fake_switches_launcher.py`` (the fixture does it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _serve() -> None:  # runs in the child process
    import logging

    from fake_switches import switch_factory
    from fake_switches.cisco.command_processor.config import ConfigCommandProcessor
    from fake_switches.transports.ssh_service import SwitchSshService
    from twisted.internet import reactor

    logging.basicConfig(level=logging.WARNING)
    opts = json.loads(sys.stdin.readline())

    def do_end(self: ConfigCommandProcessor) -> None:
        self.is_done = True

    ConfigCommandProcessor.do_end = do_end  # patch 2
    core = switch_factory.SwitchFactory().get(
        opts.get("model", "cisco_2960_24TT_L"),
        opts.get("hostname", "fake-sw"),
        opts["enable_password"],  # patch 1: str, as the shell compares str lines
    )
    service = SwitchSshService(
        ip="127.0.0.1", port=0, switch_core=core,
        users={opts["username"]: opts["password"].encode()},
    )  # fmt: skip
    lport = service.hook_to_reactor(reactor)  # patch 3: port 0
    print(lport.getHost().port, flush=True)
    reactor.run()


class FakeSwitches:
    """The fake-switches process: ``start()`` returns the SSH port; ``stop()`` ends it by PID."""

    def __init__(self, username: str = "admin", password: str = "fake-pw", enable: str = "en-pw"):
        self.username, self.password, self.enable = username, password, enable
        self.port = 0
        self._proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 30.0) -> int:
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self._proc.stdin and self._proc.stdout
        creds = {"username": self.username, "password": self.password,
                 "enable_password": self.enable}  # fmt: skip
        self._proc.stdin.write(json.dumps(creds) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError("fake-switches did not start (pip install --no-deps fake-switches)")
        self.port = int(line)
        return self.port

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None


if __name__ == "__main__":
    _serve()
