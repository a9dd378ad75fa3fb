"""Inventory readers against a fake sysfs/procfs tree (two sockets, SMT, mixed disks, NICs)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from regional_client.agent import inventory
from regional_client.agent.inventory import parse_cpu_list, parse_lan_print, primary_mac
from regional_client.agent.main import main

CPUINFO_BLOCK = """processor\t: {n}
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Gold 6348 CPU @ 2.60GHz
physical id\t: {pkg}
core id\t\t: {core}

"""


def _w(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def fake_tree(root: Path) -> Path:
    """8 logical CPUs: 2 sockets x 2 cores x 2 threads; 3 disks + loop/zram/dm; 3 NICs + lo."""
    cpu = root / "sys/devices/system/cpu"
    info = []
    for n in range(8):
        pkg, core = n // 4, (n % 4) // 2
        _w(cpu / f"cpu{n}/topology/physical_package_id", f"{pkg}\n")
        _w(cpu / f"cpu{n}/topology/core_id", f"{core}\n")
        info.append(CPUINFO_BLOCK.format(n=n, pkg=pkg, core=core))
    _w(cpu / "present", "0-7\n")
    _w(cpu / "online", "0-7\n")
    _w(root / "proc/cpuinfo", "".join(info))
    _w(root / "proc/meminfo", "MemTotal:       65758720 kB\nMemFree: 1 kB\nSwapTotal: 1024 kB\n")
    blk = root / "sys/block"
    _w(blk / "sda/size", "1953525168\n")
    _w(blk / "sda/queue/rotational", "1\n")
    _w(blk / "sda/removable", "0\n")
    _w(blk / "sda/dev", "8:0\n")
    _w(blk / "sda/device/model", "ST1000NM0055-1V4\n")
    _w(blk / "sda/device/vendor", "ATA     \n")
    _w(
        root / "run/udev/data/b8:0",
        "S:disk/by-id/x\nE:ID_SERIAL_SHORT=ZBS0ABCD\nE:ID_WWN=0x5000c5\n",
    )
    _w(blk / "nvme0n1/size", "3750748848\n")
    _w(blk / "nvme0n1/queue/rotational", "0\n")
    _w(blk / "nvme0n1/device/model", "SAMSUNG MZQL23T8HCLS-00A07\n")
    _w(blk / "nvme0n1/device/serial", "S64HNE0R123456\n")
    _w(blk / "nvme0n1/wwid", "eui.36344630\n")
    _w(blk / "vda/size", "0\n")
    for skip in ("loop0", "zram0", "dm-0", "sr0", "ram0"):
        _w(blk / f"{skip}/size", "100\n")
    net = root / "sys/class/net"
    drivers = root / "sys/bus/pci/drivers"
    for name, mac, carrier, speed, driver in (
        ("eno1", "AC:1F:6B:00:00:01", "1", "25000", "ice"),
        ("eno2", "ac:1f:6b:00:00:02", "0", "-1", "ice"),
        ("br0", "ac:1f:6b:00:00:01", "1", None, None),
    ):
        _w(net / name / "address", mac + "\n")
        _w(net / name / "carrier", carrier + "\n")
        _w(net / name / "operstate", "up\n" if carrier == "1" else "down\n")
        _w(net / name / "mtu", "9000\n")
        _w(net / name / "type", "1\n")
        if speed is not None:
            _w(net / name / "speed", speed + "\n")
        if driver:
            (drivers / driver).mkdir(parents=True, exist_ok=True)
            dev = net / name / "device"
            dev.mkdir()
            os.symlink(drivers / driver, dev / "driver")
    _w(net / "lo/address", "00:00:00:00:00:00\n")
    _w(net / "lo/type", "772\n")
    dmi = root / "sys/class/dmi/id"
    _w(dmi / "sys_vendor", "Supermicro\n")
    _w(dmi / "product_name", "SYS-1029U-TRT\n")
    _w(dmi / "product_serial", "S123456X9\n")
    _w(dmi / "board_serial", "To Be Filled By O.E.M.\n")
    return root


def test_cpu_topology(tmp_path: Path) -> None:
    cpu = inventory.cpu_info(fake_tree(tmp_path))
    assert cpu["count"] == 8 and cpu["online"] == 8
    assert (cpu["sockets"], cpu["cores"], cpu["cores_per_socket"]) == (2, 4, 2)
    assert cpu["threads_per_core"] == 2
    assert cpu["model"].startswith("Intel(R) Xeon(R) Gold 6348")
    assert cpu["vendor"] == "GenuineIntel"


def test_cpu_topology_falls_back_to_cpuinfo(tmp_path: Path) -> None:
    root = fake_tree(tmp_path)
    for d in (root / "sys/devices/system/cpu").glob("cpu[0-9]*"):
        for f in d.glob("topology/*"):
            f.unlink()
    (root / "sys/devices/system/cpu/present").unlink()
    cpu = inventory.cpu_info(root)
    assert (cpu["count"], cpu["sockets"], cpu["cores"], cpu["threads_per_core"]) == (8, 2, 4, 2)


def test_memory(tmp_path: Path) -> None:
    mem = inventory.memory_info(fake_tree(tmp_path))
    assert mem["total_bytes"] == 65758720 * 1024
    assert mem["total_mib"] == 64217
    assert mem["swap_bytes"] == 1024 * 1024


def test_disks_skip_virtual_devices(tmp_path: Path) -> None:
    disks = {d["name"]: d for d in inventory.disk_info(fake_tree(tmp_path))}
    assert sorted(disks) == ["nvme0n1", "sda", "vda"]
    sda = disks["sda"]
    assert sda["size_bytes"] == 1953525168 * 512 and sda["rotational"] is True
    assert (sda["model"], sda["vendor"], sda["serial"]) == ("ST1000NM0055-1V4", "ATA", "ZBS0ABCD")
    assert sda["wwn"] == "0x5000c5" and sda["path"] == "/dev/sda"
    nvme = disks["nvme0n1"]
    assert nvme["rotational"] is False and nvme["serial"] == "S64HNE0R123456"
    assert nvme["wwn"] == "eui.36344630"
    assert disks["vda"]["rotational"] is None and disks["vda"]["serial"] is None


def test_nics(tmp_path: Path) -> None:
    nics = {n["name"]: n for n in inventory.nic_info(fake_tree(tmp_path))}
    assert sorted(nics) == ["br0", "eno1", "eno2"]
    eno1 = nics["eno1"]
    assert eno1["mac"] == "ac:1f:6b:00:00:01" and eno1["carrier"] is True
    assert (eno1["speed_mbps"], eno1["driver"], eno1["physical"]) == (25000, "ice", True)
    assert nics["eno2"]["speed_mbps"] is None and nics["eno2"]["carrier"] is False
    assert nics["br0"]["physical"] is False and nics["br0"]["driver"] is None
    assert primary_mac(list(nics.values())) == "ac:1f:6b:00:00:01"
    assert primary_mac([{**nics["eno2"]}, {**nics["br0"]}]) == "ac:1f:6b:00:00:02"
    assert primary_mac([{**nics["br0"]}]) == "ac:1f:6b:00:00:01"
    assert primary_mac([]) is None


def test_system_dmi_and_placeholders(tmp_path: Path) -> None:
    sysinfo = inventory.system_info(fake_tree(tmp_path))
    assert sysinfo["vendor"] == "Supermicro" and sysinfo["product"] == "SYS-1029U-TRT"
    assert sysinfo["serial"] == "S123456X9"
    assert sysinfo["board_serial"] is None and sysinfo["uuid"] is None


def test_empty_root_gives_empty_inventory(tmp_path: Path) -> None:
    inv = inventory.collect(tmp_path, with_bmc=True)
    assert inv["cpu"]["count"] == 0 and inv["disks"] == [] and inv["nics"] == []
    assert inv["memory"]["total_bytes"] is None and inv["bmc"] is None


def test_no_ipmi_device_means_no_bmc_query(tmp_path: Path) -> None:
    assert inventory.ipmi_device(tmp_path) is None
    assert inventory.bmc_info(tmp_path) is None
    _w(tmp_path / "dev/ipmi/0", "")
    assert inventory.ipmi_device(tmp_path) == tmp_path / "dev/ipmi/0"


def test_parse_cpu_list() -> None:
    assert parse_cpu_list("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]
    assert parse_cpu_list("0") == [0]


LAN_PRINT = """Set in Progress         : Set Complete
Auth Type Support       : NONE MD5 PASSWORD
IP Address Source       : Static Address
IP Address              : 10.20.30.40
Subnet Mask             : 255.255.255.0
MAC Address             : 0C:C4:7A:AA:BB:CC
Default Gateway IP      : 10.20.30.1
Default Gateway MAC     : 00:00:00:00:00:00
"""


def test_parse_lan_print() -> None:
    assert parse_lan_print(LAN_PRINT) == {
        "ip_source": "Static Address",
        "ip": "10.20.30.40",
        "netmask": "255.255.255.0",
        "mac": "0c:c4:7a:aa:bb:cc",
        "gateway": "10.20.30.1",
    }
    assert parse_lan_print("Set in Progress : Set Complete\n") is None


def test_dry_run_takes_sn_from_dmi_and_mac_from_nics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = fake_tree(tmp_path / "root")
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("regional_url=http://127.0.0.1:9/ sn=auto agent_token=do-not-print\n")
    assert main(["--cmdline", str(cmdline), "--root", str(root), "--dry-run", "--no-bmc"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out)
    assert report["sn"] == "S123456X9" and report["mac"] == "ac:1f:6b:00:00:01"
    assert report["hardware"]["cpu"]["count"] == 8 and "do-not-print" not in out
