"""Configuration: the seed's example, defaults, durations, env overrides, precise errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from regional_client.config import config_from_dict, load_config, parse_duration
from regional_client.core.errors import ConfigError
from tests.helpers.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]


def test_seed_example_loads_unchanged() -> None:
    cfg = load_config(ROOT / "examples/regional-client.yaml", env={})
    assert cfg.idc == "dc1" and cfg.api_port == 8081
    assert cfg.etcd.endpoints == ["localhost:2379"] and cfg.etcd.request_timeout == 10
    assert str(cfg.dhcp.ip_range.start) == "192.168.100.10"
    assert cfg.dhcp.lease_time == 3600 and cfg.tftp.timeout == 30
    assert cfg.switch.install_vlan == 100 and cfg.bmc.protocol == "ipmi"
    assert cfg.logging.max_size == 100


def test_empty_config_runs_on_defaults() -> None:
    cfg = config_from_dict({}, env={})
    assert cfg.etcd.is_embedded and cfg.idc == "dc1" and cfg.dhcp.ip_range is None


def test_ten_line_file(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(
        "idc: sh2\napi_port: 9000\ndhcp:\n  enabled: false\ntftp:\n  root_dir: /srv/tftp\n"
    )
    cfg = load_config(f, env={})
    assert cfg.idc == "sh2" and not cfg.dhcp.enabled and str(cfg.tftp.root_dir) == "/srv/tftp"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), (12, 12), ("2d", 172800),
     ("1.5s", 1.5), ("45", 45)],
)  # fmt: skip
def test_durations(text: object, expected: float) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["5 minutes", "m5", "", "-3", "1x", True])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_env_overrides() -> None:
    cfg = config_from_dict(
        {"idc": "file", "etcd": {"endpoints": ["a:1"]}},
        env={"IDC": "env-idc", "ETCD_ENDPOINTS": "10.0.0.1:2379, 10.0.0.2:2379"},
    )
    assert cfg.idc == "env-idc"
    assert cfg.etcd.endpoints == ["10.0.0.1:2379", "10.0.0.2:2379"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"dhcp": {"ip_range": {"start": "x", "end": "1.2.3.4"}}},
         "dhcp.ip_range.start: not an IPv4 address"),
        ({"dhcp": {"lease_time": "forever"}}, "dhcp.lease_time: not a duration"),
        ({"tftp": {"block_size": 4}}, "tftp.block_size: Input should be greater than or equal"),
        ({"switch": {"install_vlan": 5000}}, "switch.install_vlan"),
        ({"bmc": {"protocol": "telnet"}}, "bmc.protocol"),
        ({"idc": "a/b"}, "idc: must be letters"),
        ({"dhcpp": {}}, "dhcpp: unknown key"),
        ({"api": {"admin_tokens": [{"name": "x", "sha256": "short"}]}},
         "api.admin_tokens.0.sha256: must be 64 hex characters"),
        ({"api_port": 70000}, "api_port"),
    ],
)  # fmt: skip
def test_errors_name_key_and_problem(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        config_from_dict(data, env={})
    assert message in e.value.message


def test_yaml_syntax_and_shape_errors(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("idc: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(f, env={})
    f.write_text("- a list\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(f, env={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml", env={})


def test_cli_config_check_exit_codes(tmp_path: Path) -> None:
    ok = run_cli("config", "check", str(ROOT / "examples/regional-client.yaml"))
    assert ok.returncode == 0 and "OK" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("dhcp:\n  ip_range:\n    start: 300.1.1.1\n    end: 10.0.0.9\n")
    r = run_cli("config", "check", str(bad))
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0  # one line
    assert "dhcp.ip_range.start: not an IPv4 address" in r.stderr
