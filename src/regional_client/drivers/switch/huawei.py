"""Huawei VRP (S-series switches) over SSH: data only.

Commands follow networking-generic-switch's Huawei tuples (``port link-type access``,
``port default vlan N``); trunks use ``port trunk allow-pass vlan`` with ``to`` ranges.
"""

from __future__ import annotations

from regional_client.drivers.switch.cli import CliProfile, ConfigRule, dashed_mac
from regional_client.drivers.switch.ssh import SshCliDriver
from regional_client.drivers.switch.validate import NamingRules

NAMING = NamingRules(
    types={
        "ethernet": "Ethernet",
        "eth": "Ethernet",
        "ge": "GigabitEthernet",
        "gigabitethernet": "GigabitEthernet",
        "xge": "XGigabitEthernet",
        "xgigabitethernet": "XGigabitEthernet",
        "25ge": "25GE",
        "40ge": "40GE",
        "100ge": "100GE",
        "eth-trunk": "Eth-Trunk",
    },
    max_index_parts=3,
    description_max=242,
)

PROFILE = CliProfile(
    name="huawei_vrp",
    scrapli_platform="huawei_vrp",
    textfsm_platform="huawei_vrp",
    naming=NAMING,
    setup=("screen-length 0 temporary",),
    logout="quit",
    failed_when_contains=("Error:", "Unrecognized command"),
    mac_format=dashed_mac,
    show_mac="display mac-address {mac}",
    show_mac_parse="display mac-address",
    mac_keys=("destination_address", "destination_port", "vlan_id"),
    show_config="display current-configuration interface {port}",
    show_config_all="display current-configuration",
    config_rules=(
        ConfigRule(r"port link-type (access|trunk|hybrid)", "mode"),
        ConfigRule(r"port default vlan (\d+)", "access_vlan"),
        ConfigRule(r"port trunk allow-pass vlan ([\d to]+)", "trunk_vlans"),
        ConfigRule(r"port trunk pvid vlan (\d+)", "native_vlan"),
        ConfigRule(r"description (.*)", "description"),
        ConfigRule(r"shutdown", "shutdown"),
    ),
    default_mode="access",
    trunk_default_vlans=(1,),
    show_ports="display interface brief",
    status_keys={"port": "interface", "link": "phy"},
    up_words=frozenset({"up"}),
    enter_interface="interface {port}",
    exit_interface=("quit",),
    access=("port link-type access", "port default vlan {vlan}"),
    trunk=(
        "port link-type trunk",
        "undo port trunk allow-pass vlan all",
        "port trunk allow-pass vlan {vlans}",
        "port trunk pvid vlan {native}",
    ),
    leave={
        "access": ("undo port default vlan",),
        "trunk": ("undo port trunk allow-pass vlan all", "undo port trunk pvid vlan"),
    },
    set_description="description {description}",
    clear_description="undo description",
    vlan_range_style=(" ", " to "),
    save=(("save", "[Y/N]"), ("y", "")),
    empty_markers=("Info: There is no", "Info: No "),
)


class HuaweiVrp(SshCliDriver):
    vendor = "huawei_vrp"
    profile = PROFILE
    naming = NAMING
