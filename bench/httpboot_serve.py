"""Serve a directory through the product's HTTP boot router on uvicorn (for tftp_bench.sh).

Usage: PYTHONPATH=src python bench/httpboot_serve.py ROOT HOST PORT
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

from regional_client.config import config_from_dict
from regional_client.daemon.runtime import Runtime
from regional_client.httpboot.router import router


def main() -> None:
    root, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    app = FastAPI()
    app.state.runtime = Runtime(config_from_dict({"tftp": {"root_dir": root}}, {}))
    app.include_router(router("/boot"))
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
