"""The ``dhcp:`` config section: seed keys, defaults, validation messages naming the key."""

from __future__ import annotations

import pytest

from regional_client.config import config_from_dict
from regional_client.core.errors import ConfigError

SEED = {
    "enabled": True,
    "interface": "eth1",
    "ip_range": {"start": "192.168.100.10", "end": "192.168.100.200"},
    "gateway": "192.168.100.1",
    "dns_servers": ["192.168.100.1", "8.8.8.8"],
    "tftp_server": "192.168.100.1",
    "boot_file": "pxelinux.0",
    "lease_time": "3600s",
}


def test_seed_section_loads_with_defaults() -> None:
    d = config_from_dict({"dhcp": SEED}, env={}).dhcp
    assert d.lease_time == 3600.0 and d.port == 67 and d.relay_reply_port == 67
    assert str(d.local_subnet()) == "192.168.100.0/24"
    assert d.boot_files[7] == "grubnetx64.efi" and d.boot_files[0] == "pxelinux.0"
    assert d.ipxe_script_url == "{regional_url}/boot/ipxe/{mac}"


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"ip_range": {"start": "192.168.100.10", "end": "192.168.101.5"}}, "inside the local"),
        ({"ip_range": {"start": "192.168.100.20", "end": "192.168.100.10"}}, "end must not"),
        ({"gateway": "192.168.100.300"}, "dhcp.gateway: not an IPv4 address"),
        ({"lease_time": "forever"}, "dhcp.lease_time: not a duration"),
        ({"relay_subnets": [{"subnet": "10.20.0.0/24",
                             "ip_range": {"start": "10.30.0.1", "end": "10.30.0.9"}}]},
         "inside 10.20.0.0/24"),
        ({"relay_subnet": []}, "dhcp.relay_subnet: unknown key"),
        ({"port": 70000}, "dhcp.port"),
    ],
)  # fmt: skip
def test_invalid_values_name_the_key(patch: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as ei:
        config_from_dict({"dhcp": {**SEED, **patch}}, env={})
    assert message in ei.value.message
