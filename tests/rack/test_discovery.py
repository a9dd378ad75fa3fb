"""Discovery: a server with no task that PXE-boots gets the default (discovery) config, and its
agent's report records it as ``discovered`` — the control plane can then create a task."""

from __future__ import annotations

from pathlib import Path

from regional_client.config import config_from_dict
from regional_client.daemon.server import RegionalClient
from regional_client.drivers.bmc.base import BmcTarget
from regional_rack.demo import _tftp_root, demo_config, demo_secrets
from regional_rack.rack import VirtualRack, free_port
from tests.helpers.regional import wait_until


async def test_unknown_server_boots_discovery_and_is_recorded(tmp_path: Path) -> None:
    _tftp_root(tmp_path / "tftpboot")
    for name in ("kernels/vmlinuz-discovery", "initrds/initrd-discovery.img"):
        (tmp_path / "tftpboot" / name).write_bytes(b"discovery image\n" * 100)
    rack = VirtualRack(1, workdir=tmp_path / "rack")
    rc = None
    try:
        await rack.start()
        ports = {"api": free_port(), "dhcp": free_port(2), "tftp": free_port(2)}
        ports["relay"] = await rack.attach(("127.0.0.1", ports["dhcp"]),
                                           ("127.0.0.1", ports["tftp"]))  # fmt: skip
        data = demo_config(tmp_path, rack, ports, demo_secrets(tmp_path))
        data["pxe"]["default_action"] = "discovery"
        rc = RegionalClient(config_from_dict(data, env={}))
        rt = await rc.start()
        server = rack.servers[0]
        # An operator (or anything) powers the unknown server on with a network boot.
        ctl = rt.bmc
        assert ctl is not None
        target = BmcTarget("127.0.0.1", "admin", rack.bmc_password, port=server.bmc["port"])
        await ctl.set_boot_device(target, "pxe", actor="test")
        await ctl.power_on(target, actor="test")
        rec = await wait_until(lambda: rt.core.cache.get_server(server.sn), timeout=60)
        assert rec.state == "discovered" and rec.macs == [server.mac]
        assert rec.hardware["system"]["serial"] == server.sn
        boot = server.boots[0]
        assert boot.config_name == "pxelinux.cfg/default"
        assert boot.params.get("discovery") == "true" and boot.params["regional_url"]
        assert "agent_token" not in boot.params
        assert boot.dhcp.ip.startswith("127.100.200.")  # a pool address: no binding for it
        assert rt.core.cache.get_task(server.sn) is None
    finally:
        if rc is not None:
            await rc.stop()
        await rack.stop()
