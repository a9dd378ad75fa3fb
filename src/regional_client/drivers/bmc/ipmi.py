"""IPMI driver: runs ``ipmitool -I lanplus`` (Debian package ``ipmitool``), one process per call.

Why ipmitool rather than a Python IPMI library: it is what the seed design and most operators
use, it is packaged by every distribution, and it copes with decades of BMC firmware quirks. Its
cost (a process per call, ~30 ms) is small next to what a BMC takes to act.

Secrets: the password goes to ipmitool through ``-f FILE``, a 0600 file inside a private 0700
directory that exists only for the duration of the call; it is never on the command line, and
the child gets a clean environment (``PATH`` and ``LC_ALL`` only), so it is not in
``/proc/<pid>/cmdline`` or ``/proc/<pid>/environ`` either.

Time: each call is bounded by ``timeout`` (asyncio); a child still running then is killed and
reaped. ``-N``/``-R`` (retransmit interval and count) and ``-C`` (cipher suite; giving it avoids
~10 s of negotiation against some BMCs) come from :class:`~regional_client.config.bmc.IpmiOptions`.

The output parsers at the bottom are pure functions (no I/O) and are tested on their own.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from regional_client.config.bmc import IpmiOptions
from regional_client.drivers.bmc.base import (
    BmcDriver,
    BmcTarget,
    BootDevice,
    BootSetting,
    PowerState,
    SystemInfo,
)
from regional_client.errors import BmcError, DriverAuthError, DriverError, DriverTimeout

DEFAULT_PORT = 623
_IPMITOOL_DEVICE = {
    BootDevice.PXE: "pxe",
    BootDevice.DISK: "disk",
    BootDevice.CDROM: "cdrom",
    BootDevice.BIOS: "bios",
}
# Boot flags parameter 5, device selector (bits 5:2 of data byte 2), IPMI v2.0 table 28-14.
_SELECTOR_DEVICE = {
    0: BootDevice.NONE,
    1: BootDevice.PXE,
    2: BootDevice.DISK,
    3: BootDevice.DISK,  # "hard drive, safe mode"
    5: BootDevice.CDROM,
    6: BootDevice.BIOS,
}
_AUTH_PATTERNS = (
    "rakp 2 hmac is invalid",
    "unauthorized name",
    "invalid role",
    "insufficient privilege",
    "no response from rakp 1",  # answered auth capabilities, then silence: login refused
    "unauthorized",
)
_UNREACHABLE_PATTERNS = (
    "get auth capabilities error",
    "no response from remote controller",
    "unable to establish ipmi v2",
    "insufficient resources for session",
)


class IpmiDriver(BmcDriver):
    """IPMI over LAN via ipmitool."""

    protocol = "ipmi"

    def __init__(self, target: BmcTarget, options: IpmiOptions | None, timeout: float) -> None:
        super().__init__(target, options or IpmiOptions(), timeout)
        self.options: IpmiOptions

    # -- the interface ----------------------------------------------------------------------
    async def get_power_status(self) -> PowerState:
        return parse_power_status(await self._run("chassis", "power", "status"), self.name)

    async def power_on(self) -> None:
        await self._run("chassis", "power", "on")

    async def power_off(self) -> None:
        await self._run("chassis", "power", "off")

    async def power_reset(self) -> None:
        await self._run("chassis", "power", "reset")

    async def set_boot_device(
        self, device: BootDevice, persistent: bool = False, uefi: bool | None = None
    ) -> None:
        if device not in _IPMITOOL_DEVICE:
            raise BmcError(f"{self.name}: cannot set boot device {device!r}", device=self.name)
        if uefi is None:  # ipmitool always writes the EFI bit: keep what the BMC has
            uefi = bool((await self.get_boot_device()).uefi)
        opts = [o for o, on in (("persistent", persistent), ("efiboot", uefi)) if on]
        args = ["chassis", "bootdev", _IPMITOOL_DEVICE[device]]
        if opts:
            args.append("options=" + ",".join(opts))
        await self._run(*args)

    async def get_boot_device(self) -> BootSetting:
        return parse_boot_flags(await self._run("chassis", "bootparam", "get", "5"), self.name)

    async def get_system_info(self) -> SystemInfo:
        info = parse_key_values(await self._run("mc", "info"))
        guid = parse_key_values(await self._run("mc", "guid")).get("System GUID")
        power = await self.get_power_status()
        return SystemInfo(
            manufacturer=info.get("Manufacturer Name"),
            model=info.get("Product Name"),
            uuid=guid,
            firmware_version=info.get("Firmware Revision"),
            power_state=power,
            extra={
                "manufacturer_id": info.get("Manufacturer ID"),
                "product_id": info.get("Product ID"),
                "ipmi_version": info.get("IPMI Version"),
            },
        )

    # -- running ipmitool ---------------------------------------------------------------------
    def command(self, password_file: str, *args: str) -> list[str]:
        """The argv of one call (public so tests can check that no secret is in it)."""
        o, t = self.options, self.target
        argv = [o.ipmitool, "-I", o.interface, "-H", t.host, "-p", str(t.port or DEFAULT_PORT)]
        argv += ["-U", t.username, "-f", password_file, "-L", o.privilege]
        if o.cipher_suite is not None:
            argv += ["-C", str(o.cipher_suite)]
        argv += ["-N", str(o.retransmit_timeout), "-R", str(o.retransmits), "-v", *args]
        return argv

    async def _run(self, *args: str) -> str:
        binary = shutil.which(self.options.ipmitool)
        if binary is None:
            raise BmcError(
                f"{self.name}: {self.options.ipmitool} not found (apt-get install ipmitool)",
                device=self.name,
            )
        with _PasswordFile(self.target.password) as pwfile:
            argv = self.command(pwfile, *args)
            argv[0] = binary
            rc, out, err = await _exec(argv, self.timeout, self.name, " ".join(args))
        if rc != 0:
            raise classify_failure(self.name, " ".join(args), rc, err or out)
        return out


class _PasswordFile:
    """A 0600 file in a fresh 0700 directory holding the password; removed on exit."""

    def __init__(self, password: str) -> None:
        self._password = password
        self._dir: str | None = None

    def __enter__(self) -> str:
        self._dir = tempfile.mkdtemp(prefix="rc-ipmi-")  # mode 0700
        path = os.path.join(self._dir, "pw")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(self._password)
        return path

    def __exit__(self, *exc: object) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


_CLEAN_ENV_KEYS = ("PATH",)


def _clean_env() -> dict[str, str]:
    env = {k: os.environ[k] for k in _CLEAN_ENV_KEYS if k in os.environ}
    env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    env["LC_ALL"] = "C"
    return env


async def _exec(argv: Sequence[str], timeout: float, name: str, what: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_clean_env(),
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except (TimeoutError, asyncio.CancelledError) as e:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if isinstance(e, asyncio.CancelledError):
            raise
        raise DriverTimeout(
            f"BMC {name}: no answer to '{what}' within {timeout:g}s", device=name, timeout=timeout
        ) from None
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


# -- pure parsers ---------------------------------------------------------------------------------


def classify_failure(name: str, what: str, rc: int, output: str) -> DriverError:
    """Turn a failed ipmitool run into the right error (auth / unreachable / refused)."""
    text = output.lower()
    detail = _last_error_line(output)
    if any(p in text for p in _AUTH_PATTERNS):
        return DriverAuthError(
            f"BMC {name}: credentials refused ({detail})", device=name, operation=what
        )
    if any(p in text for p in _UNREACHABLE_PATTERNS):
        return DriverTimeout(
            f"BMC {name}: no IPMI session could be established ({detail})",
            device=name,
            operation=what,
        )
    return BmcError(f"BMC {name}: '{what}' failed: {detail}", device=name, operation=what, rc=rc)


def _last_error_line(output: str) -> str:
    lines = [ln.strip(" >") for ln in output.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("Loading IANA")]
    return lines[-1] if lines else "no output"


def parse_power_status(out: str, name: str = "bmc") -> PowerState:
    m = re.search(r"Chassis Power is (on|off)", out)
    if not m:
        raise BmcError(f"BMC {name}: unexpected power status output: {out.strip()[:200]!r}")
    return PowerState(m.group(1))


def parse_boot_flags(out: str, name: str = "bmc") -> BootSetting:
    """Decode ``chassis bootparam get 5`` from its raw ``Boot parameter data:`` bytes."""
    m = re.search(r"Boot parameter data:\s*([0-9a-fA-F]+)", out)
    if not m or len(m.group(1)) < 4:
        raise BmcError(f"BMC {name}: unexpected boot parameter output: {out.strip()[:200]!r}")
    data = bytes.fromhex(m.group(1)[: len(m.group(1)) // 2 * 2])
    flags, selector = data[0], (data[1] >> 2) & 0x0F
    if not flags & 0x80:  # override not valid: firmware boot order
        return BootSetting(BootDevice.NONE, persistent=False, uefi=bool(flags & 0x20))
    device = _SELECTOR_DEVICE.get(selector, BootDevice.NONE)
    return BootSetting(device, persistent=bool(flags & 0x40), uefi=bool(flags & 0x20))


def parse_key_values(out: str) -> dict[str, str]:
    """``Key   : value`` lines (``mc info``, ``mc guid``) into a dict."""
    result: dict[str, str] = {}
    for line in out.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and value.strip():
            result.setdefault(key.strip(), value.strip())
    return result


def ipmitool_available(binary: str = "ipmitool") -> Path | None:
    found = shutil.which(binary)
    return Path(found) if found else None


__all__ = [
    "DEFAULT_PORT",
    "IpmiDriver",
    "classify_failure",
    "parse_boot_flags",
    "parse_key_values",
    "parse_power_status",
]
