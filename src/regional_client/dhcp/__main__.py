"""Run the DHCP component alone: ``python -m regional_client.dhcp --config FILE``.

For benchmarks and network-namespace experiments (``ip netns exec NS python -m ...``): it reads a
normal regional client config (``idc``, ``etcd.endpoints``, ``dhcp``, ``logging``), connects to
etcd, serves DHCP and nothing else until SIGTERM/SIGINT. The full product runs DHCP inside
``regional-client run``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from regional_client.config import load_config
from regional_client.core.errors import ProvisionError
from regional_client.core.logs import setup_logging
from regional_client.core.metrics import Metrics
from regional_client.dhcp.service import DhcpService
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys


async def _run(config: Path, ready_file: Path | None) -> None:
    cfg = load_config(config)
    lg = cfg.logging
    setup_logging(cfg.idc, lg.level, lg.file, lg.max_size, lg.max_backups, lg.max_age, lg.stderr)
    if not cfg.etcd.endpoints:
        raise ProvisionError("etcd.endpoints must be set when running the DHCP component alone")
    store = EtcdStore(list(cfg.etcd.endpoints), dial_timeout=cfg.etcd.dial_timeout,
                      request_timeout=cfg.etcd.request_timeout)  # fmt: skip
    await store.connect()
    svc = DhcpService(cfg.dhcp, store, Keys(cfg.idc), Metrics(cfg.idc),
                      regional_url=cfg.regional_url)  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await svc.start()
    if ready_file is not None:
        ready_file.write_text("ready\n")
    try:
        await stop.wait()
    finally:
        await svc.stop()
        await store.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m regional_client.dhcp", description=__doc__)
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--ready-file", type=Path, help="written once the sockets are open")
    args = ap.parse_args(argv)
    try:
        asyncio.run(_run(args.config, args.ready_file))
    except ProvisionError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
