"""Run the TFTP server alone: ``python -m regional_client.tftp --root DIR --listen HOST:PORT``.

For trying the server by hand and for ``bench/tftp_bench.sh``; the product runs it as a service
inside ``regional-client run``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from regional_client.config.tftp import TftpConfig
from regional_client.core.logs import setup_logging
from regional_client.tftp.server import TftpServer


async def _serve(cfg: TftpConfig) -> None:
    server = TftpServer(cfg)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Read-only TFTP server")
    ap.add_argument("--root", required=True)
    ap.add_argument("--listen", default="127.0.0.1:6969")
    ap.add_argument("--max-clients", type=int, default=100)
    ap.add_argument("--log-level", default="warning")
    a = ap.parse_args(argv)
    setup_logging("-", a.log_level)
    cfg = TftpConfig(root_dir=a.root, listen_addr=a.listen, max_clients=a.max_clients)
    asyncio.run(_serve(cfg))


if __name__ == "__main__":
    main()
