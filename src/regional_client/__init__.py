"""LPMOS Regional Client: turns approved install tasks in etcd into installed servers."""

import os as _os

# Every child we start (ipmitool, etcd) exec()s at once: gRPC's fork handlers are not needed,
# and with them enabled every fork logs "Other threads are currently calling into gRPC".
_os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

__version__ = "0.1.0"
__all__ = ["__version__"]
