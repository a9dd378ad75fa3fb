"""Validation: every vendor's names, VLAN bounds, descriptions; injection attempts rejected."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regional_client.core.errors import ValidationError
from regional_client.drivers.switch import validate as v
from regional_client.drivers.switch.base import PortConfig
from regional_client.drivers.switch.cisco import NAMING as CISCO
from regional_client.drivers.switch.h3c import NAMING as H3C
from regional_client.drivers.switch.huawei import NAMING as HUAWEI


@pytest.mark.parametrize(
    ("rules", "given_name", "canonical"),
    [
        (CISCO, "Gi1/0/1", "GigabitEthernet1/0/1"),
        (CISCO, "gigabitethernet1/0/48", "GigabitEthernet1/0/48"),
        (CISCO, "Te1/1/2", "TenGigabitEthernet1/1/2"),
        (CISCO, "Po12", "Port-channel12"),
        (HUAWEI, "GE0/0/1", "GigabitEthernet0/0/1"),
        (HUAWEI, "XGE0/0/1", "XGigabitEthernet0/0/1"),
        (HUAWEI, "25GE1/0/3", "25GE1/0/3"),
        (HUAWEI, "Eth-Trunk2", "Eth-Trunk2"),
        (H3C, "GE1/0/20", "GigabitEthernet1/0/20"),
        (H3C, "Ten-GigabitEthernet1/0/49", "Ten-GigabitEthernet1/0/49"),
        (H3C, "BAGG1", "Bridge-Aggregation1"),
    ],
)
def test_port_names_canonical(rules: v.NamingRules, given_name: str, canonical: str) -> None:
    assert v.port_name(given_name, rules) == canonical


@pytest.mark.parametrize(
    "bad",
    [
        "Gi1/0/1\nreload",
        "Gi1/0/1\n",
        "Gi1/0/1\r",
        "Gi1/0/1; reload",
        "Gi1/0/1 ; ",
        "; ",
        "Gi1/0/1 | include x",
        "Gi 1/0/1",
        "Gi1/0/1/2/3",
        "Vlan100",
        "Gi\uff11/0/1",  # fullwidth digit one
        "",
        "G" * 70 + "1",
        "GE0/0/1",  # Huawei spelling: not a Cisco interface type
    ],
)
def test_cisco_rejects_bad_port_names(bad: str) -> None:
    with pytest.raises(ValidationError) as e:
        v.port_name(bad, CISCO)
    assert e.value.fields["field"] == "port"


def test_port_name_must_be_a_string() -> None:
    with pytest.raises(ValidationError):
        v.port_name(1, CISCO)


@pytest.mark.parametrize("good", [1, 100, 4094, "100", "4094"])
def test_vlan_ok(good: object) -> None:
    assert 1 <= v.vlan_id(good) <= 4094


@pytest.mark.parametrize(
    "bad", [0, 4095, -1, "0", "4095", "100 ; x", "100\n", " 100", "1e2", True, 100.0, None, "0x64"]
)
def test_vlan_rejected(bad: object) -> None:
    with pytest.raises(ValidationError):
        v.vlan_id(bad)


@pytest.mark.parametrize(
    "bad",
    [
        "a" * 500,
        "web\nreload",
        "tab\there",
        "bell\x07",
        "esc\x1b[2J",
        "what?",
        " lead",
        "trail ",
        "ünï",
        "del\x7f",
    ],
)
def test_description_rejected(bad: str) -> None:
    with pytest.raises(ValidationError):
        v.description(bad, CISCO)


def test_description_limits_per_vendor() -> None:
    assert v.description("x" * 240, CISCO)
    with pytest.raises(ValidationError):
        v.description("x" * 241, CISCO)
    assert v.description("x" * 255, H3C)


@given(st.text(max_size=60))
def test_description_never_passes_control_chars(text: str) -> None:
    try:
        out = v.description(text, HUAWEI)
    except ValidationError:
        return
    assert all(" " <= c <= "~" for c in out) and "?" not in out


@pytest.mark.parametrize(
    ("given_mac", "want"),
    [
        ("0C:C4:7A:12:34:56", "0c:c4:7a:12:34:56"),
        ("0c-c4-7a-12-34-56", "0c:c4:7a:12:34:56"),
        ("0cc4.7a12.3456", "0c:c4:7a:12:34:56"),
        ("0cc4-7a12-3456", "0c:c4:7a:12:34:56"),
        ("0cc47a123456", "0c:c4:7a:12:34:56"),
    ],
)
def test_mac_forms(given_mac: str, want: str) -> None:
    assert v.mac_address(given_mac) == want


@pytest.mark.parametrize(
    "bad",
    [
        "0c:c4:7a:12:34",
        "0c:c4-7a:12:34:56",
        "zz:c4:7a:12:34:56",
        "0cc4.7a12.3456\n",
        "0cc4.7a12.3456 ; reload",
    ],
)
def test_mac_rejected(bad: str) -> None:
    with pytest.raises(ValidationError):
        v.mac_address(bad)


def test_port_config_rules() -> None:
    cfg = v.port_config({"mode": "trunk", "vlans": [30, "10", 20, 10], "native_vlan": 10}, CISCO)
    assert cfg == PortConfig("trunk", (10, 20, 30), 10, None)
    for bad in (
        {"mode": "access", "vlans": [10, 20]},
        {"mode": "access", "vlans": []},
        {"mode": "access", "vlans": [10], "native_vlan": 5},
        {"mode": "trunk", "vlans": []},
        {"mode": "hybrid", "vlans": [10]},
        {"mode": "access", "vlans": "100"},
        {"mode": "access", "vlans": [100], "shell": "reload"},
        {"mode": "trunk", "vlans": [10], "native_vlan": 4095},
    ):
        with pytest.raises(ValidationError):
            v.port_config(bad, CISCO)


def test_vlan_ranges_round_trip() -> None:
    assert v.vlan_ranges([1, 2, 3, 5, 7, 8]) == "1-3,5,7-8"
    assert v.vlan_ranges([10, 11, 12, 20], " ", " to ") == "10 to 12 20"
    assert v.parse_vlan_ranges("10 to 12 20") == (10, 11, 12, 20)
    assert v.parse_vlan_ranges("1-3,5") == (1, 2, 3, 5)
    assert len(v.parse_vlan_ranges("ALL")) == 4094
