"""``pxe:`` section (owned by the boot-files component)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from regional_client.config.base import Section


class DiscoveryBoot(Section):
    """What servers without a task boot when ``default_action`` is ``discovery``."""

    kernel_path: str = "kernels/vmlinuz-discovery"
    """Relative to ``tftp.root_dir`` (or absolute inside it)."""
    initrd_path: str = "initrds/initrd-discovery.img"
    kernel_params: str = ""
    """Added after ``default_kernel_params``; ``regional_url`` and ``discovery=true`` follow."""


class PxeConfig(Section):
    config_dir: Path = Path("/tftpboot/pxelinux.cfg")
    """pxelinux configs (``01-aa-bb-...`` and ``default``); must lie inside ``tftp.root_dir``."""
    kernel_dir: Path = Path("/tftpboot/kernels")
    """Where ``vmlinuz-{os_type}-{os_version}`` is expected when a task names no kernel."""
    initrd_dir: Path = Path("/tftpboot/initrds")
    """Where ``initrd-{os_type}-{os_version}.img`` is expected when a task names no initrd."""
    default_kernel_params: str = "console=tty0 console=ttyS0,115200n8 ip=dhcp"
    """First on every generated kernel command line (console settings etc.)."""
    grub_dir: Path | None = None
    """GRUB configs (``grub.cfg`` dispatcher and ``grub.cfg-01-aa-bb-...``). Default:
    ``<tftp.root_dir>/grub``, where Debian's signed ``grubnetx64.efi`` looks."""
    ipxe_dir: Path | None = None
    """iPXE scripts (``01-aa-bb-....ipxe``, ``default.ipxe``, ``boot.ipxe``). Default:
    ``<tftp.root_dir>/ipxe``."""
    templates_dir: Path | None = None
    """Operator templates, searched before the built-in ones: ``<kind>/<os_type>-<os_version>.j2``,
    ``<kind>/<os_type>.j2``, ``<kind>/install.j2`` with kind ``pxelinux``, ``grub`` or ``ipxe``;
    also ``<kind>/localboot.j2``, ``<kind>/discovery.j2``, ``grub/grub.cfg.j2``,
    ``ipxe/boot.ipxe.j2``."""
    default_action: Literal["localboot", "discovery"] = "localboot"
    """What a server with no per-MAC config boots: its local disk, or the discovery ramdisk."""
    discovery: DiscoveryBoot = Field(default_factory=DiscoveryBoot)
    menu_timeout: int = Field(0, ge=0, le=600)
    """Seconds a boot menu waits before booting its only entry (0: boot at once)."""
