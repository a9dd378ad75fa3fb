"""The BMC facade the workflow and the admin API call: policy around the drivers.

:class:`BmcController` turns a task's ``bmc`` record into a :class:`~.base.BmcTarget` (task
values first, then the config defaults; ``enc:`` passwords decrypted) and runs operations on it:

* **concurrency** — at most ``bmc.max_concurrent`` driver calls at once (a semaphore held for
  each call, not while waiting between read-backs), and one operation at a time per BMC;
* **time** — every driver call bounded by ``bmc.timeout``; calls that time out or fail on the
  network are retried ``bmc.retries`` times with doubling backoff; credentials refused are not;
* **read-after-write** — a boot override is read back and re-issued (``bmc.verify_attempts``)
  until the BMC reports it; a power change is polled until the BMC reports the target state
  (``bmc.power_timeout``, re-issued once half-way; BMCs such as sushy-tools' apply power 1-11 s
  late). A BMC that
  accepts a change and does not honour it raises :class:`~regional_client.core.errors.BmcError`
  naming the BMC, never reports success;
* **idempotence** — "on" of a running machine and "off" of a stopped one do nothing; a reset of
  a stopped machine powers it on;
* **records** — metrics ``regional_client_bmc_operations_total{idc,operation}``,
  ``regional_client_bmc_operation_failures_total{idc,operation,reason}`` and
  ``regional_client_bmc_operation_seconds{idc,operation}``; one audit record per operation
  (actor, target BMC, operation, result, details; never the password); a JSON log line.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from regional_client.config.bmc import BmcConfig
from regional_client.config.secretbox import SecretBox
from regional_client.core.audit import Audit
from regional_client.core.errors import (
    BmcError,
    DriverAuthError,
    DriverError,
    DriverTimeout,
    ProvisionError,
    ValidationError,
)
from regional_client.core.logs import StructLogger, get_logger
from regional_client.core.metrics import Metrics
from regional_client.drivers.bmc.base import (
    SETTABLE_DEVICES,
    BmcDriver,
    BmcTarget,
    BootDevice,
    BootSetting,
    PowerState,
    SystemInfo,
)
from regional_client.drivers.registry import BMC_DRIVERS

T = TypeVar("T")
_HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")
_USER_RE = re.compile(r"^[^\x00-\x1f\x7f\s-][^\x00-\x1f\x7f]{0,63}$")
_DRIVER_CACHE_SIZE = 512


@dataclass(frozen=True, slots=True)
class PowerResult:
    """What a power operation did: ``changed`` False when the machine already was there."""

    state: PowerState
    changed: bool
    note: str = ""


class BmcController:
    """Verified, rate-capped, audited BMC operations. Service name: ``bmc``."""

    def __init__(
        self,
        config: BmcConfig,
        metrics: Metrics,
        audit: Audit,
        secrets: SecretBox | None = None,
        logger: StructLogger | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.audit = audit
        self.secrets = secrets or SecretBox(None)
        self.log = logger or get_logger("bmc")
        self._sleep = sleep
        self._slots = asyncio.Semaphore(config.max_concurrent)
        self._locks: dict[str, asyncio.Lock] = {}
        self._drivers: OrderedDict[tuple[Any, ...], BmcDriver] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()
        idc = metrics.idc
        self._ops = metrics.counter(
            "regional_client_bmc_operations_total", "BMC operations started", ["operation"]
        )
        self._fails = metrics.counter(
            "regional_client_bmc_operation_failures_total",
            "BMC operations that failed",
            ["operation", "reason"],
        )
        self._latency = metrics.histogram(
            "regional_client_bmc_operation_seconds",
            "Duration of BMC operations, verification included",
            ["operation"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160),
        )
        self._idc = idc

    # -- service ------------------------------------------------------------------------------
    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        drivers = list(self._drivers.values())
        self._drivers.clear()
        for d in drivers:
            await d.close()

    # -- credentials --------------------------------------------------------------------------
    def target_for(self, record: Any, sn: str | None = None) -> BmcTarget:
        """Build a target from a task (model or dict), a dict with ``bmc``, or the ``bmc`` dict.

        Task values win; ``bmc.default_username/password/port`` and ``bmc.protocol`` fill gaps.
        """
        if hasattr(record, "model_dump"):
            record = record.model_dump(mode="json")
        if not isinstance(record, Mapping):
            raise ValidationError("BMC record must be a mapping", sn=sn)
        bmc = record.get("bmc", record) if isinstance(record.get("bmc"), Mapping) else record
        sn = sn or record.get("sn")
        where = f"server {sn}" if sn else "BMC record"
        host = str(bmc.get("ip") or bmc.get("host") or "").strip()
        if not host:
            raise ValidationError(f"{where}: no BMC address (bmc.ip)", sn=sn)
        _check_host(host, where, sn)
        btype = str(bmc.get("type") or self.config.protocol).lower()
        BMC_DRIVERS.get(btype)  # unknown type: ConfigError naming it
        username = str(bmc.get("username") or self.config.default_username)
        if not _USER_RE.match(username):
            raise ValidationError(f"{where}: invalid BMC username", sn=sn)
        password = bmc.get("password") or self.config.default_password
        if not password:
            raise ValidationError(
                f"{where}: no BMC password (task bmc.password or bmc.default_password)", sn=sn
            )
        port = bmc.get("port") or self.config.default_port
        try:
            port = int(port) if port is not None else None
        except (TypeError, ValueError):
            raise ValidationError(f"{where}: bmc.port must be a number", sn=sn) from None
        if port is not None and not 0 < port < 65536:
            raise ValidationError(f"{where}: bmc.port out of range", sn=sn)
        return BmcTarget(
            host=host,
            username=username,
            password=self.secrets.decrypt(str(password)),
            type=btype,
            port=port,
            sn=sn,
            system_id=str(bmc["system_id"]) if bmc.get("system_id") else None,
        )

    def driver_for(self, target: BmcTarget) -> BmcDriver:
        """One driver per BMC (sessions are reused); least recently used ones are dropped."""
        key = (target.name, target.username, target.password)
        drv = self._drivers.get(key)
        if drv is not None:
            self._drivers.move_to_end(key)
            return drv
        cls = BMC_DRIVERS.get(target.type)
        options = getattr(self.config, target.type, None)
        drv = cls(target, options, self.config.timeout)
        self._drivers[key] = drv
        while len(self._drivers) > _DRIVER_CACHE_SIZE:
            _, old = self._drivers.popitem(last=False)
            task = asyncio.get_running_loop().create_task(old.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return drv

    # -- public operations --------------------------------------------------------------------
    async def power_status(self, target: BmcTarget, actor: str = "workflow") -> PowerState:
        return await self._op(target, actor, "power_status", self._status, {})

    async def power_on(self, target: BmcTarget, actor: str = "workflow") -> PowerResult:
        return await self._op(target, actor, "power_on", self._on, {})

    async def power_off(self, target: BmcTarget, actor: str = "workflow") -> PowerResult:
        return await self._op(target, actor, "power_off", self._off, {})

    async def power_reset(self, target: BmcTarget, actor: str = "workflow") -> PowerResult:
        return await self._op(target, actor, "power_reset", self._reset, {})

    async def power_cycle(self, target: BmcTarget, actor: str = "workflow") -> PowerResult:
        return await self._op(target, actor, "power_cycle", self._cycle, {})

    async def set_boot_device(
        self,
        target: BmcTarget,
        device: BootDevice | str,
        persistent: bool = False,
        uefi: bool | None = None,
        actor: str = "workflow",
    ) -> BootSetting:
        dev = _device(device)
        details = {"boot_device": dev.value, "persistent": persistent, "uefi": uefi}

        async def run(drv: BmcDriver) -> BootSetting:
            return await self._set_boot(drv, dev, persistent, uefi)

        return await self._op(target, actor, "set_boot_device", run, details)

    async def get_boot_device(self, target: BmcTarget, actor: str = "workflow") -> BootSetting:
        async def run(drv: BmcDriver) -> BootSetting:
            return await self._call(drv, drv.get_boot_device)

        return await self._op(target, actor, "get_boot_device", run, {})

    async def system_info(self, target: BmcTarget, actor: str = "workflow") -> SystemInfo:
        async def run(drv: BmcDriver) -> SystemInfo:
            return await self._call(drv, drv.get_system_info)

        return await self._op(target, actor, "system_info", run, {})

    # -- the operation wrapper: lock, metrics, audit, log ----------------------------------------
    async def _op(
        self,
        target: BmcTarget,
        actor: str,
        operation: str,
        body: Callable[[BmcDriver], Awaitable[T]],
        details: dict[str, Any],
    ) -> T:
        self._ops.labels(idc=self._idc, operation=operation).inc()
        start = time.monotonic()
        lock = self._locks.setdefault(target.name, asyncio.Lock())
        try:
            async with lock:
                result = await body(self.driver_for(target))
        except ProvisionError as e:
            self._failed(target, actor, operation, details, e, start)
            raise
        except Exception as e:  # a driver bug must still be named, counted and audited
            err = BmcError(f"BMC {target.name}: {operation} failed: {e!r}", device=target.name)
            self._failed(target, actor, operation, details, err, start)
            raise err from e
        elapsed = time.monotonic() - start
        self._latency.labels(idc=self._idc, operation=operation).observe(elapsed)
        out = _result_details(result)
        self.audit.record(
            actor, f"bmc.{operation}", target.name, "ok", sn=target.sn, **details, **out
        )
        self.log.info(
            f"BMC {operation} done",
            action=f"bmc_{operation}",
            bmc=target.name,
            sn=target.sn,
            actor=actor,
            seconds=round(elapsed, 3),
            **details,
            **out,
        )
        return result

    def _failed(
        self,
        target: BmcTarget,
        actor: str,
        operation: str,
        details: dict[str, Any],
        err: ProvisionError,
        start: float,
    ) -> None:
        elapsed = time.monotonic() - start
        self._latency.labels(idc=self._idc, operation=operation).observe(elapsed)
        self._fails.labels(idc=self._idc, operation=operation, reason=err.code).inc()
        self.audit.record(
            actor, f"bmc.{operation}", target.name, err.message, sn=target.sn, **details
        )
        self.log.warning(
            f"BMC {operation} failed",
            action=f"bmc_{operation}",
            bmc=target.name,
            sn=target.sn,
            actor=actor,
            error=err.message,
            error_code=err.code,
            seconds=round(elapsed, 3),
        )

    # -- one driver call: slot, retries ----------------------------------------------------------
    async def _call(self, drv: BmcDriver, fn: Callable[[], Awaitable[T]]) -> T:
        delay = self.config.retry_backoff
        for attempt in range(self.config.retries + 1):
            try:
                async with self._slots:
                    # Drivers bound each round trip by bmc.timeout themselves; a driver method
                    # makes at most three (Redfish discovery). This is the net for one that hangs.
                    return await asyncio.wait_for(fn(), 3 * self.config.timeout + 1)
            except DriverAuthError:
                raise
            except (DriverError, TimeoutError) as e:
                if isinstance(e, TimeoutError):
                    e = DriverTimeout(
                        f"BMC {drv.name}: no answer within {self.config.timeout:g}s",
                        device=drv.name,
                    )
                if attempt >= self.config.retries or e.fields.get("permanent"):
                    raise e from None
                self.log.info(
                    "BMC call failed, retrying",
                    action="bmc_retry",
                    bmc=drv.name,
                    attempt=attempt + 1,
                    error=e.message,
                )
                await self._sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    # -- policies -------------------------------------------------------------------------------
    async def _status(self, drv: BmcDriver) -> PowerState:
        return await self._call(drv, drv.get_power_status)

    async def _on(self, drv: BmcDriver) -> PowerResult:
        if await self._status(drv) is PowerState.ON:
            return PowerResult(PowerState.ON, changed=False, note="already on")
        await self._call(drv, drv.power_on)
        await self._await_state(drv, PowerState.ON, "power on", reissue=drv.power_on)
        return PowerResult(PowerState.ON, changed=True)

    async def _off(self, drv: BmcDriver) -> PowerResult:
        if await self._status(drv) is PowerState.OFF:
            return PowerResult(PowerState.OFF, changed=False, note="already off")
        await self._call(drv, drv.power_off)
        await self._await_state(drv, PowerState.OFF, "power off", reissue=drv.power_off)
        return PowerResult(PowerState.OFF, changed=True)

    async def _reset(self, drv: BmcDriver) -> PowerResult:
        if await self._status(drv) is PowerState.OFF:
            result = await self._on(drv)
            return PowerResult(result.state, True, note="was off: powered on")
        await self._call(drv, drv.power_reset)
        # A reset may show "off" for a moment (or, on slow BMCs, for seconds): wait for "on";
        # if it stays off, power it on rather than reset again.
        await self._await_state(drv, PowerState.ON, "power reset", reissue=drv.power_on)
        return PowerResult(PowerState.ON, changed=True)

    async def _cycle(self, drv: BmcDriver) -> PowerResult:
        await self._off(drv)
        await self._on(drv)
        return PowerResult(PowerState.ON, changed=True)

    async def _await_state(
        self,
        drv: BmcDriver,
        want: PowerState,
        what: str,
        reissue: Callable[[], Awaitable[None]],
    ) -> None:
        """Poll until the BMC reports ``want``; re-issue the command once, half-way.

        Only once: a BMC that applies power changes late may restart its countdown on every
        new request (sushy-tools' fake driver does), so re-issuing often can postpone the
        change forever.
        """
        start = time.monotonic()
        deadline = start + self.config.power_timeout
        reissue_at: float | None = start + self.config.power_timeout / 2
        seen: PowerState | None = None
        while True:
            seen = await self._status(drv)
            if seen is want:
                return
            now = time.monotonic()
            if now >= deadline:
                break
            if reissue_at is not None and now >= reissue_at:
                self.log.warning(
                    "BMC has not applied the power change yet, re-issuing it once",
                    action="bmc_power_reissue",
                    bmc=drv.name,
                    expected=want.value,
                )
                await self._call(drv, reissue)
                reissue_at = None
            await self._sleep(min(self.config.poll_interval, max(0.0, deadline - now)))
        raise BmcError(
            f"BMC {drv.name}: {what} accepted but the power state is still {seen} after "
            f"{self.config.power_timeout:g}s",
            device=drv.name,
            expected=want.value,
            actual=seen.value if seen else None,
        )

    async def _set_boot(
        self, drv: BmcDriver, device: BootDevice, persistent: bool, uefi: bool | None
    ) -> BootSetting:
        want = BootSetting(device, persistent, uefi)
        seen: BootSetting | None = None
        for _ in range(self.config.verify_attempts):
            await self._call(drv, lambda: drv.set_boot_device(device, persistent, uefi))
            seen = await self._call(drv, drv.get_boot_device)
            if boot_honoured(want, seen, self._once_may_read_continuous(drv)):
                return seen
            self.log.warning(
                "BMC did not honour boot device, re-issuing",
                action="bmc_boot_mismatch",
                bmc=drv.name,
                expected=_describe(want),
                actual=_describe(seen),
            )
        raise BmcError(
            f"BMC {drv.name}: accepted boot device {_describe(want)} but reports "
            f"{_describe(seen)} after {self.config.verify_attempts} attempts (ignored)",
            device=drv.name,
            expected=_describe(want),
            actual=_describe(seen) if seen else None,
        )

    def _once_may_read_continuous(self, drv: BmcDriver) -> bool:
        return drv.protocol == "redfish" and self.config.redfish.accept_continuous_for_once


def boot_honoured(want: BootSetting, seen: BootSetting, once_as_continuous: bool) -> bool:
    """Does a read-back boot setting satisfy the request?"""
    if seen.device is not want.device:
        return False
    if want.uefi is not None and seen.uefi is not None and want.uefi != seen.uefi:
        return False
    if seen.persistent != want.persistent:
        return once_as_continuous and not want.persistent and seen.persistent
    return True


def _describe(s: BootSetting | None) -> str:
    if s is None:
        return "nothing"
    mode = "" if s.uefi is None else (" uefi" if s.uefi else " legacy")
    return f"{s.device.value} ({'persistent' if s.persistent else 'once'}{mode})"


def _device(device: BootDevice | str) -> BootDevice:
    try:
        dev = BootDevice(str(device).lower())
    except ValueError:
        dev = None
    if dev not in SETTABLE_DEVICES:
        allowed = ", ".join(d.value for d in SETTABLE_DEVICES)
        raise ValidationError(f"boot device must be one of {allowed}, not {device!r}")
    return dev


def _check_host(host: str, where: str, sn: str | None) -> None:
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    if not _HOST_RE.match(host):
        raise ValidationError(f"{where}: invalid BMC address {host!r}", sn=sn)


def _result_details(result: Any) -> dict[str, Any]:
    if isinstance(result, PowerResult):
        return {"state": result.state.value, "changed": result.changed, "note": result.note}
    if isinstance(result, PowerState):
        return {"state": result.value}
    if isinstance(result, BootSetting):
        return {"result_boot": _describe(result)}
    return {}


__all__ = ["BmcController", "PowerResult", "boot_honoured"]
