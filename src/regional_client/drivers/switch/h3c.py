"""H3C Comware (v5/v7, also HPE Comware) over SSH: data only.

As networking-generic-switch's ``HpeComware``: ``port access vlan N``, trunks with
``port trunk permit vlan`` and ``to`` ranges.
"""

from __future__ import annotations

from regional_client.drivers.switch.cli import CliProfile, ConfigRule, dashed_mac
from regional_client.drivers.switch.ssh import SshCliDriver
from regional_client.drivers.switch.validate import NamingRules

NAMING = NamingRules(
    types={
        "ge": "GigabitEthernet",
        "gigabitethernet": "GigabitEthernet",
        "xge": "Ten-GigabitEthernet",
        "ten-gigabitethernet": "Ten-GigabitEthernet",
        "wge": "Twenty-FiveGigE",
        "twenty-fivegige": "Twenty-FiveGigE",
        "fge": "FortyGigE",
        "fortygige": "FortyGigE",
        "hge": "HundredGigE",
        "hundredgige": "HundredGigE",
        "bagg": "Bridge-Aggregation",
        "bridge-aggregation": "Bridge-Aggregation",
    },
    max_index_parts=3,
    description_max=255,
)

PROFILE = CliProfile(
    name="h3c_comware",
    scrapli_platform="hp_comware",
    textfsm_platform="hp_comware",
    naming=NAMING,
    setup=("screen-length disable",),
    logout="quit",
    failed_when_contains=(
        "% Unrecognized command",
        "% Incomplete command",
        "% Too many parameters",
        "% Wrong parameter",
        "% Ambiguous command",
    ),
    mac_format=dashed_mac,
    show_mac="display mac-address {mac}",
    show_mac_parse="display mac-address",
    mac_keys=("mac_address", "interface", "vlan_id"),
    show_config="display current-configuration interface {port}",
    show_config_all="display current-configuration",
    config_rules=(
        ConfigRule(r"port link-type (access|trunk|hybrid)", "mode"),
        ConfigRule(r"port access vlan (\d+)", "access_vlan"),
        ConfigRule(r"port trunk permit vlan ([\d to]+)", "trunk_vlans"),
        ConfigRule(r"port trunk pvid vlan (\d+)", "native_vlan"),
        ConfigRule(r"description (.*)", "description"),
        ConfigRule(r"shutdown", "shutdown"),
    ),
    default_mode="access",
    trunk_default_vlans=(1,),
    show_ports="display interface brief",
    status_keys={
        "port": "interface",
        "link": "link",
        "speed": "speed",
        "duplex": "duplex",
        "description": "description",
    },
    up_words=frozenset({"up"}),
    enter_interface="interface {port}",
    exit_interface=("quit",),
    access=("port link-type access", "port access vlan {vlan}"),
    trunk=(
        "port link-type trunk",
        "undo port trunk permit vlan all",
        "port trunk permit vlan {vlans}",
        "port trunk pvid vlan {native}",
    ),
    leave={
        "access": ("undo port access vlan",),
        "trunk": ("undo port trunk permit vlan all", "undo port trunk pvid vlan"),
    },
    set_description="description {description}",
    clear_description="undo description",
    vlan_range_style=(" ", " to "),
    save=(("save force", ""),),
)


class H3cComware(SshCliDriver):
    vendor = "h3c_comware"
    profile = PROFILE
    naming = NAMING
