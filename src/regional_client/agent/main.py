"""``regional-client agent``: the reference agent's command line.

Settings come from the kernel command line (``--cmdline``, default ``/proc/cmdline``) and are
overridden by flags. There is no token setting at all: the agent gets this boot's token in the
answer to its first report and keeps it in memory (SPEC §5).

Exit codes: 0 done (rebooted, or ``--once`` found nothing to do), 2 bad settings, 3 the regional
client refused a request (wrong token, unknown serial...), 4 it stayed unreachable past
``--max-retry-time``, 5 operation limit reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from regional_client.agent import inventory
from regional_client.agent.client import AgentApiError, AgentClient, Backoff, RetriesExhausted
from regional_client.agent.cmdline import (
    AgentSettings,
    normalize_mac,
    read_cmdline,
    settings_from_cmdline,
)
from regional_client.agent.loop import LoopConfig, Outcome, run_loop
from regional_client.agent.operations import OpContext
from regional_client.core.errors import ValidationError
from regional_client.core.logs import get_logger, setup_logging

log = get_logger("agent")
DEFAULT_CMDLINE = Path("/proc/cmdline")
DEFAULT_REBOOT = "reboot -f"
"""Used only when the settings came from a real provisioning boot (``/proc/cmdline`` has
``regional_url``): inside the ramdisk an immediate reboot into the installed OS is wanted."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cmdline", type=Path, default=DEFAULT_CMDLINE, help="kernel command line")
    p.add_argument("--regional-url", help="regional client URL (kernel: regional_url)")
    p.add_argument("--sn", help="serial number (kernel: sn; default: DMI product serial)")
    p.add_argument("--mac", help="install MAC (kernel: mac or BOOTIF; default: first NIC up)")
    p.add_argument("--dry-run", action="store_true", help="print the report JSON and exit")
    p.add_argument("--once", action="store_true", help="exit when there is nothing to do")
    p.add_argument("--reboot-cmd", help="command run at the end ('' disables)")
    p.add_argument("--installer", help="default os_install installer (image, noop, ...)")
    p.add_argument("--install-target", help="default image target device or file")
    p.add_argument("--idle-interval", type=float, default=30.0, help="seconds between idle polls")
    p.add_argument("--max-retry-time", type=float, help="give up after this many seconds offline")
    p.add_argument("--root", type=Path, default=Path("/"), help="root of /proc and /sys to read")
    p.add_argument("--no-bmc", action="store_true", help="skip the ipmitool BMC query")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``agent`` on the main CLI; the handler is ``args.func(args) -> int``."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "agent",
        help="run the provisioning agent (what runs in the boot ramdisk)",
        allow_abbrev=False,
    )
    add_arguments(p)
    p.set_defaults(func=run_from_args)
    return p


def resolve_settings(args: argparse.Namespace) -> AgentSettings:
    """Kernel parameters, then flags on top."""
    s = settings_from_cmdline(read_cmdline(args.cmdline))
    s.from_boot = s.from_boot and args.cmdline == DEFAULT_CMDLINE
    if args.regional_url:
        s.regional_url = args.regional_url.rstrip("/")
    if args.sn:
        s.sn = args.sn
    if args.mac:
        s.mac = normalize_mac(args.mac)
    if args.installer:
        s.installer = args.installer
    if args.reboot_cmd is not None:
        s.reboot_cmd = args.reboot_cmd
    elif s.reboot_cmd is None and s.from_boot:
        s.reboot_cmd = DEFAULT_REBOOT
    if s.reboot_cmd in ("", "none"):
        s.reboot_cmd = None
    s.once = s.once or args.once
    return s


def report_body(settings: AgentSettings, hardware: dict[str, Any]) -> dict[str, Any]:
    return {"sn": settings.sn, "mac": settings.mac, "hardware": hardware}


def run_from_args(args: argparse.Namespace) -> int:
    setup_logging("-", level=args.log_level)
    try:
        settings = resolve_settings(args)
    except ValidationError as e:
        print(f"agent: {e.message}", file=sys.stderr)
        return 2
    hardware = inventory.collect(args.root, with_bmc=not args.no_bmc)
    settings.sn = settings.sn or hardware["system"].get("serial")
    settings.mac = settings.mac or inventory.primary_mac(hardware["nics"])
    if args.dry_run:
        json.dump(report_body(settings, hardware), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    missing = settings.missing()
    if missing:
        print(f"agent: missing {', '.join(missing)} (kernel parameters or flags)", file=sys.stderr)
        return 2
    return asyncio.run(_run(settings, hardware, args))


async def _run(settings: AgentSettings, hardware: dict[str, Any], args: argparse.Namespace) -> int:
    assert settings.regional_url and settings.sn
    backoff = Backoff(max_elapsed=args.max_retry_time)
    async with AgentClient(settings.regional_url, settings.sn, backoff=backoff) as client:
        ctx = OpContext(client, installer=settings.installer, install_target=args.install_target)
        cfg = LoopConfig(
            once=settings.once, idle_interval=args.idle_interval, reboot_cmd=settings.reboot_cmd
        )
        try:
            outcome = await run_loop(client, hardware, settings.mac, ctx, cfg)
        except AgentApiError as e:
            log.error("regional client refused the agent", action="agent_refused", reason=str(e))
            return 3
        except RetriesExhausted as e:
            log.error("regional client unreachable", action="agent_gave_up", reason=str(e))
            return 4
    log.info("agent finished", action="agent_done", outcome=str(outcome))
    return 5 if outcome is Outcome.OPERATION_LIMIT else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="regional-client-agent", description=__doc__, allow_abbrev=False
    )
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


__all__ = ["add_parser", "main", "resolve_settings", "run_from_args"]
