"""LPMOS Regional Client: turns approved install tasks in etcd into installed servers."""

__version__ = "0.1.0"
__all__ = ["__version__"]
