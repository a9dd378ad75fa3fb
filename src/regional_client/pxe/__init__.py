"""Per-MAC boot configs (pxelinux, GRUB, iPXE) from Jinja2 templates, rebuilt from etcd."""
