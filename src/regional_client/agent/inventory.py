"""Hardware inventory read from procfs and sysfs, the way ``lscpu``/``lsblk``/``ip link`` do.

Every reader takes ``root`` (``/`` on a real machine) so tests can point it at a fake tree; the
accuracy test runs the same code against this machine and compares with the system tools.
Hand-written because the candidates do not fit a ramdisk agent: ``psutil`` needs a compiled
extension and knows no disk models, serials or DMI data; ``lshw``/``dmidecode`` are separate
programs whose output would have to be parsed anyway.

The result is plain JSON (:func:`collect`)::

    {"cpu": {...}, "memory": {...}, "disks": [...], "nics": [...], "system": {...}, "bmc": ...}
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

SKIP_DISK_PREFIXES = ("loop", "ram", "zram", "dm-", "md", "sr", "nbd", "fd")
"""Block devices that are not install targets: loop/RAM/compressed-RAM, device-mapper and
software RAID (built on disks we already list), optical and floppy drives, network devices."""


def _read(path: Path) -> str | None:
    """File content stripped, or None when absent/unreadable (sysfs raises EINVAL on some
    attributes of a downed link, e.g. ``speed`` and ``carrier``)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    text = _read(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def parse_cpu_list(text: str) -> list[int]:
    """``0-3,8,10-11`` → ``[0, 1, 2, 3, 8, 10, 11]``."""
    out: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def _cpuinfo_blocks(text: str) -> list[dict[str, str]]:
    blocks: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if cur:
                blocks.append(cur)
                cur = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            cur[key.strip()] = value.strip()
    if cur:
        blocks.append(cur)
    return blocks


def cpu_info(root: Path = Path("/")) -> dict[str, Any]:
    """Logical CPU count, model, vendor, sockets, cores and threads per core.

    Topology comes from ``/sys/devices/system/cpu/cpuN/topology`` (what ``lscpu`` uses), with
    ``/proc/cpuinfo``'s ``physical id``/``core id`` as fallback.
    """
    sysdir = root / "sys/devices/system/cpu"
    blocks = _cpuinfo_blocks(_read(root / "proc/cpuinfo") or "")
    procs = [b for b in blocks if "processor" in b]
    present = _read(sysdir / "present")
    online = _read(sysdir / "online")
    cpus = parse_cpu_list(present) if present else [int(b["processor"]) for b in procs]
    online_ids = parse_cpu_list(online) if online else cpus
    packages: set[str] = set()
    cores: set[tuple[str, str]] = set()
    by_id = {b.get("processor"): b for b in procs}
    for n in online_ids:
        topo = sysdir / f"cpu{n}/topology"
        pkg = _read(topo / "physical_package_id")
        core = _read(topo / "core_id")
        info = by_id.get(str(n), {})
        pkg = pkg if pkg is not None else info.get("physical id", "0")
        core = core if core is not None else info.get("core id", str(n))
        packages.add(pkg)
        cores.add((pkg, core))
    first = procs[0] if procs else {}
    model = first.get("model name") or first.get("Model") or first.get("cpu model")
    sockets = len(packages) or None
    return {
        "count": len(cpus),
        "online": len(online_ids),
        "model": model,
        "vendor": first.get("vendor_id") or first.get("CPU implementer"),
        "arch": platform.machine() or None,
        "sockets": sockets,
        "cores": len(cores) or None,
        "cores_per_socket": len(cores) // sockets if sockets else None,
        "threads_per_core": len(online_ids) // len(cores) if cores else None,
    }


def memory_info(root: Path = Path("/")) -> dict[str, Any]:
    """``MemTotal`` (and ``SwapTotal``) from ``/proc/meminfo``, in bytes."""
    values: dict[str, int] = {}
    for line in (_read(root / "proc/meminfo") or "").splitlines():
        m = re.match(r"^(\w+):\s+(\d+)\s*kB", line)
        if m:
            values[m.group(1)] = int(m.group(2)) * 1024
    total = values.get("MemTotal")
    return {
        "total_bytes": total,
        "total_mib": total // (1024 * 1024) if total is not None else None,
        "swap_bytes": values.get("SwapTotal"),
    }


def _udev_props(root: Path, devnum: str | None, kind: str) -> dict[str, str]:
    """Properties udev stored for a device (``/run/udev/data/b8:0``); lsblk reads the same."""
    if not devnum:
        return {}
    props: dict[str, str] = {}
    for line in (_read(root / f"run/udev/data/{kind}{devnum}") or "").splitlines():
        if line.startswith("E:"):
            key, _, value = line[2:].partition("=")
            props[key] = value
    return props


def disk_info(root: Path = Path("/")) -> list[dict[str, Any]]:
    """Whole disks from ``/sys/block`` (no partitions), minus :data:`SKIP_DISK_PREFIXES`."""
    base = root / "sys/block"
    names = sorted(p.name for p in base.iterdir()) if base.is_dir() else []
    disks = []
    for name in names:
        if name.startswith(SKIP_DISK_PREFIXES):
            continue
        d = base / name
        sectors = _read_int(d / "size")
        udev = _udev_props(root, _read(d / "dev"), "b")
        serial = (
            _read(d / "device/serial")
            or _read(d / "serial")
            or udev.get("ID_SERIAL_SHORT")
            or udev.get("ID_SERIAL")
        )
        model = _read(d / "device/model") or udev.get("ID_MODEL")
        rotational = _read_int(d / "queue/rotational")
        disks.append(
            {
                "name": name,
                "path": f"/dev/{name}",
                "size_bytes": sectors * 512 if sectors is not None else None,
                "rotational": bool(rotational) if rotational is not None else None,
                "removable": _read(d / "removable") == "1",
                "model": model or None,
                "vendor": _read(d / "device/vendor") or None,
                "serial": serial or None,
                "wwn": _read(d / "device/wwid") or _read(d / "wwid") or udev.get("ID_WWN"),
            }
        )
    return disks


def nic_info(root: Path = Path("/")) -> list[dict[str, Any]]:
    """Network interfaces from ``/sys/class/net`` except ``lo``.

    ``physical`` is true when the interface has a ``device`` link (a PCI/virtio/USB function),
    false for software interfaces (bridges, veth, bonds...). ``speed_mbps`` is None when the
    link is down or the driver does not know it (sysfs answers EINVAL or -1).
    """
    base = root / "sys/class/net"
    names = sorted(p.name for p in base.iterdir()) if base.is_dir() else []
    nics = []
    for name in names:
        n = base / name
        if name == "lo" or _read(n / "type") == "772":  # ARPHRD_LOOPBACK
            continue
        speed = _read_int(n / "speed")
        carrier = _read(n / "carrier")
        driver_link = n / "device/driver"
        driver = os.path.basename(os.readlink(driver_link)) if driver_link.is_symlink() else None
        nics.append(
            {
                "name": name,
                "mac": (_read(n / "address") or "").lower() or None,
                "operstate": _read(n / "operstate"),
                "carrier": carrier == "1",
                "speed_mbps": speed if speed is not None and speed > 0 else None,
                "mtu": _read_int(n / "mtu"),
                "driver": driver,
                "physical": (n / "device").exists(),
            }
        )
    return nics


_DMI_FIELDS = {
    "vendor": "sys_vendor",
    "product": "product_name",
    "version": "product_version",
    "serial": "product_serial",
    "uuid": "product_uuid",
    "board_vendor": "board_vendor",
    "board_product": "board_name",
    "board_serial": "board_serial",
    "chassis_serial": "chassis_serial",
    "bios_vendor": "bios_vendor",
    "bios_version": "bios_version",
}
_DMI_PLACEHOLDERS = {"", "to be filled by o.e.m.", "default string", "not specified", "none"}


def system_info(root: Path = Path("/")) -> dict[str, Any]:
    """Vendor, product and serial from ``/sys/class/dmi/id`` (None where absent or a
    firmware placeholder like "To Be Filled By O.E.M."). Serials need root to read."""
    base = root / "sys/class/dmi/id"
    out: dict[str, Any] = {}
    for key, fname in _DMI_FIELDS.items():
        value = _read(base / fname)
        out[key] = None if value is None or value.lower() in _DMI_PLACEHOLDERS else value
    return out


_LAN_KEYS = {
    "IP Address Source": "ip_source",
    "IP Address": "ip",
    "Subnet Mask": "netmask",
    "MAC Address": "mac",
    "Default Gateway IP": "gateway",
}


def parse_lan_print(text: str) -> dict[str, Any] | None:
    """Parse ``ipmitool lan print`` output; None when it has no IP address line."""
    out: dict[str, Any] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key in _LAN_KEYS and _LAN_KEYS[key] not in out:
            out[_LAN_KEYS[key]] = value.strip()
    if "ip" not in out:
        return None
    if "mac" in out:
        out["mac"] = out["mac"].lower()
    return out


def ipmi_device(root: Path = Path("/")) -> Path | None:
    """The local IPMI device node (``/dev/ipmi0``, ``/dev/ipmi/0`` or ``/dev/ipmidev/0``)."""
    for rel in ("dev/ipmi0", "dev/ipmi/0", "dev/ipmidev/0"):
        if (root / rel).exists():
            return root / rel
    return None


def bmc_info(
    root: Path = Path("/"),
    ipmitool_argv: list[str] | None = None,
    timeout: float = 20.0,
) -> dict[str, Any] | None:
    """BMC LAN settings via ``ipmitool lan print`` when ipmitool and an IPMI device exist.

    ``ipmitool_argv`` replaces the default ``["ipmitool"]`` prefix (tests point it at a BMC
    simulator over ``-I lanplus``; then no local device is required). Failures give None: an
    inventory without a BMC address is still an inventory.
    """
    if ipmitool_argv is None:
        tool = shutil.which("ipmitool")
        if tool is None or ipmi_device(root) is None:
            return None
        ipmitool_argv = [tool]
    try:
        proc = subprocess.run(
            [*ipmitool_argv, "lan", "print"],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return parse_lan_print(proc.stdout)


def collect(
    root: Path = Path("/"), ipmitool_argv: list[str] | None = None, with_bmc: bool = True
) -> dict[str, Any]:
    """The full inventory document sent in ``/report``'s ``hardware`` field."""
    return {
        "cpu": cpu_info(root),
        "memory": memory_info(root),
        "disks": disk_info(root),
        "nics": nic_info(root),
        "system": system_info(root),
        "bmc": bmc_info(root, ipmitool_argv) if with_bmc else None,
    }


def primary_mac(nics: list[dict[str, Any]]) -> str | None:
    """The MAC to report when none was given: first physical NIC with carrier, then any
    physical NIC, then any NIC with a MAC (sorted by name, so the choice is stable)."""
    with_mac = [n for n in nics if n.get("mac") and n["mac"] != "00:00:00:00:00:00"]
    for pick in (
        [n for n in with_mac if n["physical"] and n["carrier"]],
        [n for n in with_mac if n["physical"]],
        with_mac,
    ):
        if pick:
            return str(pick[0]["mac"])
    return None


__all__ = [
    "bmc_info",
    "collect",
    "cpu_info",
    "disk_info",
    "ipmi_device",
    "memory_info",
    "nic_info",
    "parse_cpu_list",
    "parse_lan_print",
    "primary_mac",
    "system_info",
]
