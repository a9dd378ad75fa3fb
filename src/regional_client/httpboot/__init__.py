"""HTTP boot: the TFTP root and per-MAC iPXE scripts over HTTP on the API port."""

from regional_client.httpboot.response import FdResponse
from regional_client.httpboot.router import router

__all__ = ["FdResponse", "router"]
