"""Pure parsing and command building (no I/O), on output shaped like public device captures."""

from __future__ import annotations

import pytest

from regional_client.core.errors import ProtocolError
from regional_client.drivers.switch import cli
from regional_client.drivers.switch.base import PortChange, PortConfig
from regional_client.drivers.switch.cisco import PROFILE as CISCO
from regional_client.drivers.switch.h3c import PROFILE as H3C
from regional_client.drivers.switch.huawei import PROFILE as HUAWEI

CISCO_MAC = """          Mac Address Table
-------------------------------------------

Vlan    Mac Address       Type        Ports
----    -----------       --------    -----
 All    0100.0ccc.cccc    STATIC      CPU
  30    0cc4.7a12.3456    DYNAMIC     Te1/1/2
Total Mac Addresses for this criterion: 2
"""

HUAWEI_MAC = """-------------------------------------------------------------------------------
MAC Address    VLAN/VSI/BD                       Learned-From        Type
-------------------------------------------------------------------------------
0cc4-7a12-3456 100/-/-                           XGE0/0/7            dynamic

-------------------------------------------------------------------------------
Total items displayed = 1
"""

HUAWEI_BRIEF = """PHY: Physical
*down: administratively down
InUti/OutUti: input utility/output utility
Interface                   PHY   Protocol  InUti OutUti   inErrors  outErrors
Eth-Trunk4                  up    down      0.69% 13.57%       4625          0
  GigabitEthernet15/1/0(10G) up    up        0.69% 14.30%          0          0
GigabitEthernet0/0/1        *down down         0%     0%          0          0
NULL0                       up    up(s)        --     --          0          0
Vlanif100                   up    up           --     --          0          0
"""

H3C_BRIEF = """Brief information on interfaces in route mode:
Link: ADM - administratively down; Stby - standby
Protocol: (s) - spoofing
Interface            Link Protocol Primary IP        Description
NULL0                UP   UP(s)    --
Vlan1                UP   UP       10.0.0.1

Brief information on interfaces in bridge mode:
Link: ADM - administratively down; Stby - standby
Speed: (a) - auto
Duplex: (a)/A - auto; H - half; F - full
Type: A - access; T - trunk; H - hybrid
Interface            Link Speed     Duplex Type PVID Description
GE1/0/1              UP   1G(a)     F(a)   A    100  srv-0042
XGE1/0/49            DOWN auto      A      T    1
"""


def test_cisco_mac_short_name_canonical() -> None:
    loc = cli.parse_mac(CISCO, "0c:c4:7a:12:34:56", CISCO_MAC)
    assert loc is not None and (loc.port, loc.vlan) == ("TenGigabitEthernet1/1/2", 30)
    assert cli.parse_mac(CISCO, "0c:c4:7a:00:00:01", CISCO_MAC) is None


def test_huawei_mac() -> None:
    loc = cli.parse_mac(HUAWEI, "0c:c4:7a:12:34:56", HUAWEI_MAC)
    assert loc is not None and (loc.port, loc.vlan) == ("XGigabitEthernet0/0/7", 100)


def test_huawei_brief_keeps_physical_and_trunk_ports_only() -> None:
    ports = cli.parse_ports(HUAWEI, HUAWEI_BRIEF)
    assert [(p.port, p.status) for p in ports] == [
        ("Eth-Trunk4", "up"),
        ("GigabitEthernet15/1/0", "up"),
        ("GigabitEthernet0/0/1", "down"),
    ]


def test_h3c_brief_bridge_section() -> None:
    ports = cli.parse_ports(H3C, H3C_BRIEF)
    assert [(p.port, p.status, p.speed, p.description) for p in ports] == [
        ("GigabitEthernet1/0/1", "up", "1G(a)", "srv-0042"),
        ("Ten-GigabitEthernet1/0/49", "down", "auto", None),
    ]


def test_unparsable_output_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        cli.parse_ports(CISCO, "% Invalid input detected at '^' marker.\nrubbish line\n")


@pytest.mark.parametrize(
    ("profile", "text", "want"),
    [
        (CISCO, "interface Gi1/0/1\n switchport trunk allowed vlan 10-12,20\n switchport trunk "
                "allowed vlan add 30\n switchport trunk native vlan 10\n switchport mode trunk\n"
                "end", PortConfig("trunk", (10, 11, 12, 20, 30), 10, "")),
        (CISCO, "interface Gi1/0/1\n description web 01\nend", PortConfig("access", (1,), None,
                                                                          "web 01")),
        (HUAWEI, "#\ninterface GigabitEthernet0/0/1\n port link-type trunk\n port trunk allow-pass"
                 " vlan 10 to 12 20\n#\nreturn", PortConfig("trunk", (10, 11, 12, 20), 1, "")),
        (H3C, "#\ninterface GigabitEthernet1/0/1\n port link-mode bridge\n port access vlan 30\n#",
         PortConfig("access", (30,), None, "")),
    ],
)  # fmt: skip
def test_parse_config(profile: cli.CliProfile, text: str, want: PortConfig) -> None:
    assert cli.parse_config(profile, "x", text) == want


def test_parse_config_needs_a_stanza() -> None:
    with pytest.raises(ProtocolError):
        cli.parse_config(CISCO, "Gi1/0/9", "% Invalid input detected at '^' marker.")
    with pytest.raises(ProtocolError, match="hybrid"):
        cli.parse_config(HUAWEI, "GE0/0/1", "interface GE0/0/1\n port link-type hybrid\n#")


def test_change_commands_undo_old_mode() -> None:
    trunk = PortConfig("trunk", (10, 20), 10, None)
    access = PortConfig("access", (100,), None, "")
    assert cli.change_commands(HUAWEI, PortChange("GigabitEthernet0/0/1", access, trunk)) == [
        "interface GigabitEthernet0/0/1",
        "undo port trunk allow-pass vlan all",
        "undo port trunk pvid vlan",
        "port link-type access",
        "port default vlan 100",
        "undo description",
        "quit",
    ]
    assert cli.change_commands(CISCO, PortChange("GigabitEthernet1/0/1", trunk, access)) == [
        "interface GigabitEthernet1/0/1",
        "switchport mode trunk",
        "switchport trunk native vlan 10",
        "switchport trunk allowed vlan 10,20",
    ]


CISCO_RUN = """Building configuration...

Current configuration : 412 bytes
!
version 15.2
hostname tor1
!
interface GigabitEthernet1/0/1
 description web-01
 switchport access vlan 30
 switchport mode access
!
interface GigabitEthernet1/0/2
 switchport trunk allowed vlan 10,20-22
 switchport trunk native vlan 10
 switchport mode trunk
!
interface Vlan1
 no ip address
!
line vty 0 4
 transport input ssh
end
"""

HUAWEI_RUN = """#
 sysname tor1
#
interface GigabitEthernet0/0/1
 port link-type access
 port default vlan 30
#
interface GigabitEthernet0/0/2
 port link-type trunk
 port trunk allow-pass vlan 10 20 to 22
#
return
"""


def test_whole_configuration_split_into_interface_stanzas() -> None:
    st = cli.split_stanzas(CISCO_RUN)
    assert list(st) == ["GigabitEthernet1/0/1", "GigabitEthernet1/0/2", "Vlan1"]
    assert "line vty" not in st["Vlan1"] and "transport" not in st["Vlan1"]
    assert cli.parse_config(CISCO, "GigabitEthernet1/0/1", st["GigabitEthernet1/0/1"]) == (
        PortConfig("access", (30,), None, "web-01")
    )
    trunk = cli.parse_config(CISCO, "GigabitEthernet1/0/2", st["GigabitEthernet1/0/2"])
    assert (trunk.mode, trunk.vlans, trunk.native_vlan) == ("trunk", (10, 20, 21, 22), 10)
    hw = cli.split_stanzas(HUAWEI_RUN)
    assert cli.parse_config(HUAWEI, "GigabitEthernet0/0/1", hw["GigabitEthernet0/0/1"]).vlans == (
        30,
    )
    assert cli.parse_config(HUAWEI, "GigabitEthernet0/0/2", hw["GigabitEthernet0/0/2"]).vlans == (
        10, 20, 21, 22,
    )  # fmt: skip
    assert cli.split_stanzas("no interfaces here\n") == {}
