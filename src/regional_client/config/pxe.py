"""``pxe:`` section (owned by the boot-files component)."""

from __future__ import annotations

from pathlib import Path

from regional_client.config.base import Section


class PxeConfig(Section):
    config_dir: Path = Path("/tftpboot/pxelinux.cfg")
    kernel_dir: Path = Path("/tftpboot/kernels")
    initrd_dir: Path = Path("/tftpboot/initrds")
    default_kernel_params: str = "console=tty0 console=ttyS0,115200n8 ip=dhcp"
