"""Serve a directory through the product's HTTP boot router on uvicorn (for tftp_bench.sh).

Usage: PYTHONPATH=src python bench/httpboot_serve.py ROOT HOST PORT
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from regional_client.core.metrics import Metrics
from regional_client.httpboot.router import router


def main() -> None:
    root, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    app = FastAPI()
    app.include_router(router(Path(root), Metrics("bench"), prefix="/boot"))
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
