"""``regional-client run --config FILE``: the service."""

from __future__ import annotations

import argparse
import asyncio

from regional_client.config import load_config
from regional_client.daemon.server import RegionalClient


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the regional client service")
    p.add_argument("--config", "-c", help="YAML config file (default: all defaults)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(RegionalClient(config).run_until_signal())
    return 0
