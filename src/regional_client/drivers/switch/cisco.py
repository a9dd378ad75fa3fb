"""Cisco IOS / IOS-XE (Catalyst) over SSH: data only (commands, prompts' failure strings)."""

from __future__ import annotations

from regional_client.drivers.switch.cli import CliProfile, ConfigRule, cisco_mac
from regional_client.drivers.switch.ssh import SshCliDriver
from regional_client.drivers.switch.validate import NamingRules

NAMING = NamingRules(
    types={
        "fa": "FastEthernet",
        "fastethernet": "FastEthernet",
        "gi": "GigabitEthernet",
        "gigabitethernet": "GigabitEthernet",
        "te": "TenGigabitEthernet",
        "tengigabitethernet": "TenGigabitEthernet",
        "twe": "TwentyFiveGigE",
        "twentyfivegige": "TwentyFiveGigE",
        "fo": "FortyGigabitEthernet",
        "fortygigabitethernet": "FortyGigabitEthernet",
        "hu": "HundredGigE",
        "hundredgige": "HundredGigE",
        "et": "Ethernet",
        "eth": "Ethernet",
        "ethernet": "Ethernet",
        "po": "Port-channel",
        "port-channel": "Port-channel",
    },
    max_index_parts=3,
    description_max=240,
)

PROFILE = CliProfile(
    name="cisco_ios",
    scrapli_platform="cisco_iosxe",
    textfsm_platform="cisco_ios",
    naming=NAMING,
    setup=("terminal length 0", "terminal width 511"),
    logout="exit",
    failed_when_contains=(
        "% Ambiguous command",
        "% Incomplete command",
        "% Invalid input detected",
        "% Unknown command",
        "% Bad ",
        "% Access denied",
    ),
    mac_format=cisco_mac,
    show_mac="show mac address-table address {mac}",
    show_mac_parse="show mac address-table",
    mac_keys=("destination_address", "destination_port", "vlan_id"),
    show_config="show running-config interface {port}",
    show_config_all="show running-config",
    config_rules=(
        ConfigRule(r"switchport mode (access|trunk)", "mode"),
        ConfigRule(r"switchport access vlan (\d+)", "access_vlan"),
        ConfigRule(r"switchport trunk allowed vlan (?:add )?([\d,\-]+|none|ALL)", "trunk_vlans"),
        ConfigRule(r"switchport trunk native vlan (\d+)", "native_vlan"),
        ConfigRule(r"description (.*)", "description"),
        ConfigRule(r"shutdown", "shutdown"),
    ),
    default_mode="access",
    trunk_default_vlans=tuple(range(1, 4095)),
    show_ports="show interfaces status",
    status_keys={
        "port": "port",
        "link": "status",
        "speed": "speed",
        "duplex": "duplex",
        "description": "name",
    },
    up_words=frozenset({"connected"}),
    enter_interface="interface {port}",
    exit_interface=(),
    access=("switchport mode access", "switchport access vlan {vlan}"),
    trunk=(
        "switchport mode trunk",
        "switchport trunk native vlan {native}",
        "switchport trunk allowed vlan {vlans}",
    ),
    leave={"trunk": ("no switchport trunk allowed vlan", "no switchport trunk native vlan")},
    set_description="description {description}",
    clear_description="no description",
    save=(("write memory", ""),),
)


class CiscoIos(SshCliDriver):
    vendor = "cisco_ios"
    profile = PROFILE
    naming = NAMING
