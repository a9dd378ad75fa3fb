"""``regional-client`` command line: run the service, check configs, manage tasks, tools.

Every error a person can cause (bad config, bad task, etcd down, unknown serial) ends in a
one-line message on stderr and a non-zero exit code, never a traceback.

``kill -USR1 <pid>`` makes any ``regional-client`` process print every thread's stack to stderr
and go on (Python's faulthandler): what an operator needs to report a process that hangs.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import importlib
import signal
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from regional_client import __version__
from regional_client.core.errors import ProvisionError

# Sub-command modules that contribute ``add_parser(subparsers)``; other distributions add theirs
# under the entry-point group below (``regional_rack`` contributes ``demo``).
COMMANDS_GROUP = "regional_client.commands"
_MODULES = [
    "regional_client.cli.run",
    "regional_client.cli.config_cmd",
    "regional_client.cli.task",
    "regional_client.cli.tokens",
    "regional_client.cli.secret",
    "regional_client.agent.main",
]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="regional-client",
        description="LPMOS Regional Client: bare-metal provisioning for one data center.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and name.startswith(e.name):
                continue  # optional component not installed
            raise
        mod.add_parser(sub)
    for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        ep.load()(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    faulthandler.register(signal.SIGUSR1, all_threads=True, chain=False)
    func: Callable[[argparse.Namespace], Any] = args.func
    try:
        result = func(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except ProvisionError as e:
        print(f"regional-client: error: {e.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
