"""The reference provisioning agent: what runs in the boot ramdisk of a server being installed.

``inventory`` reads the hardware, ``client`` speaks the agent API, ``loop`` runs the operation
loop, ``operations`` and ``installers`` do the work; ``main`` is the ``regional-client agent``
command; ``agent.sh`` is the same protocol in POSIX sh for busybox-only ramdisks.
"""

from pathlib import Path

AGENT_SH = Path(__file__).with_name("agent.sh")
"""The POSIX-sh agent, for building busybox initrds (``sh agent.sh [CMDLINE_FILE]``)."""

__all__ = ["AGENT_SH"]
