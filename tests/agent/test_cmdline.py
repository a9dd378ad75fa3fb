"""Kernel command line parsing and settings resolution (flags over kernel parameters)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from regional_client.agent.cmdline import (
    normalize_mac,
    parse_cmdline,
    read_cmdline,
    settings_from_cmdline,
)
from regional_client.agent.main import DEFAULT_REBOOT, add_arguments, add_parser, resolve_settings
from regional_client.core.errors import ValidationError

BOOT = (
    "BOOT_IMAGE=/vmlinuz initrd=initrds/agent.img ip=dhcp console=ttyS0,115200n8 "
    "regional_url=http://10.0.0.1:8081/ sn=SN-001 agent_token=tok-123 "
    "BOOTIF=01-52-54-00-AA-BB-CC auto_install=true quiet -- init_arg sn=IGNORED"
)


def test_parse_kernel_words_quotes_and_double_dash() -> None:
    p = parse_cmdline('a=1 quiet b="x y" a=2 -- sn=after\n')
    assert p == {"a": "2", "quiet": "", "b": "x y"}


def test_settings_from_boot_line() -> None:
    s = settings_from_cmdline(parse_cmdline(BOOT))
    assert s.regional_url == "http://10.0.0.1:8081"
    assert s.sn == "SN-001"
    assert not hasattr(s, "token")  # an agent_token on the command line is ignored (SPEC §5)
    assert s.mac == "52:54:00:aa:bb:cc"
    assert s.from_boot and not s.once
    assert "tok-123" not in repr(s)


def test_sn_auto_means_unset_and_mac_param_wins_over_bootif() -> None:
    s = settings_from_cmdline(
        parse_cmdline("sn=auto mac=AA:BB:CC:DD:EE:FF BOOTIF=01-11-22-33-44-55-66 agent_once=1")
    )
    assert s.sn is None and s.mac == "aa:bb:cc:dd:ee:ff" and s.once
    assert s.missing() == ["regional_url", "sn"]


@pytest.mark.parametrize("bad", ["zz:bb:cc:dd:ee:ff", "01-aa-bb", "", "aa:bb:cc:dd:ee:ff:00"])
def test_bad_mac_is_a_clear_error(bad: str) -> None:
    with pytest.raises(ValidationError, match="not a MAC"):
        normalize_mac(bad)


def test_missing_cmdline_file_is_empty(tmp_path: Path) -> None:
    assert read_cmdline(tmp_path / "nope") == {}


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(allow_abbrev=False)
    add_arguments(p)
    return p.parse_args(list(argv))


def test_flags_override_kernel_and_no_token_from_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cmd = tmp_path / "cmdline"
    cmd.write_text(BOOT)
    monkeypatch.setenv("REGIONAL_AGENT_TOKEN", "from-env")
    s = resolve_settings(
        _args("--cmdline", str(cmd), "--sn", "OTHER", "--mac", "02-00-00-00-00-01")
    )
    assert (s.sn, s.mac) == ("OTHER", "02:00:00:00:00:01")
    assert "tok-123" not in repr(s) and "from-env" not in repr(s)
    # a cmdline file that is not /proc/cmdline is not a provisioning boot: no default reboot
    assert s.reboot_cmd is None
    for flag in ("--token", "--token-file"):
        with pytest.raises(SystemExit):
            _args(flag, "x")
        sub = argparse.ArgumentParser().add_subparsers()
        with pytest.raises(SystemExit):
            add_parser(sub).parse_args([flag, "x"])


def test_reboot_command_resolution(tmp_path: Path) -> None:
    cmd = tmp_path / "cmdline"
    cmd.write_text(BOOT + " agent_reboot=none")
    assert resolve_settings(_args("--cmdline", str(cmd))).reboot_cmd is None
    assert resolve_settings(_args("--cmdline", str(cmd), "--reboot-cmd", "true")).reboot_cmd == (
        "true"
    )
    args = _args("--reboot-cmd", "")
    assert resolve_settings(args).reboot_cmd is None
    assert DEFAULT_REBOOT.startswith("reboot")
