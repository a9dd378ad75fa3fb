"""BMC address in the inventory: real ``ipmitool lan print`` against OpenIPMI's ``ipmi_sim``.

In a ramdisk the agent uses ipmitool's local interface (``/dev/ipmi0``); no such device exists
here, so the same code path is pointed at the simulator over ``-I lanplus`` on loopback (the
password from a file, never on the command line)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from regional_client.agent import inventory

LAN_CONF = """name "agenttest"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 {port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  user 2 true  "admin"  "s3cret-pw" admin    10       none md2 md5 straight
"""
EMU = """mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
mc_enable 0x20
"""


@pytest.fixture(scope="module")
def ipmitool_argv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    for tool in ("ipmi_sim", "ipmitool"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is required (Debian packages openipmi, ipmitool)")
    d = tmp_path_factory.mktemp("ipmi")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (d / "lan.conf").write_text(LAN_CONF.format(port=port))
    (d / "cmds.emu").write_text(EMU)
    pw = d / "pw"
    pw.write_text("s3cret-pw\n")
    pw.chmod(0o600)
    sim = subprocess.Popen(
        ["ipmi_sim", "-c", str(d / "lan.conf"), "-f", str(d / "cmds.emu"), "-n",
         "-s", str(d / "state")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    argv = ["ipmitool", "-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", str(port),
            "-U", "admin", "-f", str(pw), "-N", "1", "-R", "2"]  # fmt: skip
    try:
        for _ in range(50):
            if subprocess.run([*argv, "mc", "info"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail("ipmi_sim did not answer")
        for setting in (["ipsrc", "static"], ["ipaddr", "10.20.30.40"],
                        ["netmask", "255.255.255.0"], ["macaddr", "0c:c4:7a:aa:bb:cc"],
                        ["defgw", "ipaddr", "10.20.30.1"]):  # fmt: skip
            subprocess.run([*argv, "lan", "set", "1", *setting], check=True, capture_output=True)
        yield argv
    finally:
        sim.kill()
        sim.wait()


def test_bmc_address_from_ipmitool(ipmitool_argv: list[str], tmp_path: Path) -> None:
    bmc = inventory.bmc_info(tmp_path, ipmitool_argv)
    assert bmc == {
        "ip_source": "Static Address",
        "ip": "10.20.30.40",
        "netmask": "255.255.255.0",
        "mac": "0c:c4:7a:aa:bb:cc",
        "gateway": "10.20.30.1",
    }
    assert inventory.collect(tmp_path, ipmitool_argv)["bmc"] == bmc


def test_ipmitool_failure_gives_no_bmc(tmp_path: Path) -> None:
    # a fake /dev/ipmi0 makes the agent try the local interface, which fails here: no BMC
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev/ipmi0").write_text("")
    if shutil.which("ipmitool"):
        assert inventory.bmc_info(tmp_path, timeout=20) is None
    assert inventory.bmc_info(tmp_path, ["ipmitool", "-I", "nosuchintf"]) is None
    assert inventory.bmc_info(tmp_path, ["/nonexistent/ipmitool"]) is None
