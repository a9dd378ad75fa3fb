"""Per-MAC boot configs (pxelinux, GRUB, iPXE) from Jinja2 templates, rebuilt from etcd."""

from regional_client.pxe.generator import PxeGenerator, SyncResult
from regional_client.pxe.service import PxeService, wants_pxe
from regional_client.pxe.spec import BootSpec

__all__ = ["BootSpec", "PxeGenerator", "PxeService", "SyncResult", "wants_pxe"]
