"""Per-MAC boot configs for pxelinux, GRUB and iPXE, rendered from Jinja2 templates.

For a server ``aa:bb:cc:dd:ee:ff`` the generator writes, inside the TFTP root:

- ``pxelinux.cfg/01-aa-bb-cc-dd-ee-ff`` (BIOS PXE via pxelinux),
- ``grub/grub.cfg-01-aa-bb-cc-dd-ee-ff`` (UEFI via GRUB; GRUB's own per-MAC lookup name), and
  the shared ``grub/grub.cfg``, which Debian's signed ``grubnetx64.efi`` reads first and which
  hands over to the per-MAC file with ``configfile`` on ``$net_default_mac``,
- ``ipxe/01-aa-bb-cc-dd-ee-ff.ipxe`` (served over HTTP at ``/boot/ipxe/{mac}``),

plus ``default`` configs for servers with no task (local disk or the discovery ramdisk).

Every file starts with a ``# lpmos {json}`` comment (after ``#!ipxe`` in iPXE scripts) naming the
task it was made for, so :meth:`PxeGenerator.get` and :meth:`list` need no other state: the files
are derived from etcd and :meth:`sync` rebuilds them all. Writes are atomic (temporary file in the
same directory, ``fsync``, ``rename``, ``fsync`` of the directory); temporary names start with a
dot, which the TFTP/HTTP resolver never serves.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from regional_client.config import Config, PxeConfig
from regional_client.core import tokens
from regional_client.core.errors import ConfigError, NotFound, ValidationError
from regional_client.core.ids import normalize_mac
from regional_client.core.logs import StructLogger, get_logger
from regional_client.pxe.spec import (
    BootSpec,
    check_params,
    check_rel_path,
    check_url,
    mac_hyphen,
    merge_params,
)

__all__ = ["KINDS", "PxeGenerator", "SyncResult", "atomic_write"]

KINDS = ("pxelinux", "grub", "ipxe")
BUILTIN_TEMPLATES = Path(__file__).parent / "templates"
_META = re.compile(r"^# lpmos (\{.*\})$", re.M)
_MAC_FILE = re.compile(r"^01-((?:[0-9a-f]{2}-){5}[0-9a-f]{2})$")


def atomic_write(path: Path, content: str, mode: int = 0o644) -> None:
    """Replace ``path`` with ``content`` so readers see the old or the new file, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(content)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


@dataclass
class SyncResult:
    written: list[str] = field(default_factory=list)
    """MACs whose configs were (re)written."""
    removed: list[str] = field(default_factory=list)
    """MACs whose stale configs were deleted."""
    failed: dict[str, str] = field(default_factory=dict)
    """Serial number (or MAC) → why its config could not be generated."""


class PxeGenerator:
    """Writes, reads and removes boot configs. Thread-safe; all methods are quick and blocking."""

    def __init__(
        self,
        config: PxeConfig,
        tftp_root: Path,
        regional_url: str,
        http_base_url: str | None = None,
        log: StructLogger | None = None,
    ) -> None:
        self.config = config
        self.root = Path(tftp_root)
        self.regional_url = check_url(regional_url, "regional_url")
        self.http_base = check_url(http_base_url or f"{self.regional_url}/boot", "http_base_url")
        self.pxelinux_dir = self._inside_root(config.config_dir, "pxe.config_dir")
        self.grub_dir = self._inside_root(config.grub_dir or self.root / "grub", "pxe.grub_dir")
        self.ipxe_dir = self._inside_root(config.ipxe_dir or self.root / "ipxe", "pxe.ipxe_dir")
        self.default_params = check_params(config.default_kernel_params, "default_kernel_params")
        self.log = log or get_logger("pxe")
        self._lock = threading.RLock()
        loaders: list[jinja2.BaseLoader] = []
        if config.templates_dir is not None:
            loaders.append(jinja2.FileSystemLoader(str(config.templates_dir)))
        loaders.append(jinja2.FileSystemLoader(str(BUILTIN_TEMPLATES)))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
        )

    @classmethod
    def from_config(cls, config: Config) -> PxeGenerator:
        prefix = config.http_boot.path_prefix.rstrip("/")
        return cls(
            config.pxe,
            config.tftp.root_dir,
            config.regional_url,
            http_base_url=f"{config.regional_url}{prefix}",
        )

    def _inside_root(self, path: Path, key: str) -> Path:
        p = Path(path)
        if not p.is_absolute():
            p = self.root / p
        try:
            p.resolve().relative_to(self.root.resolve())
        except ValueError:
            raise ConfigError(f"{key}: {p} is not inside tftp.root_dir ({self.root})") from None
        return p

    # ---- paths --------------------------------------------------------------------------

    def paths(self, mac: str) -> dict[str, Path]:
        h = mac_hyphen(mac)
        return {
            "pxelinux": self.pxelinux_dir / f"01-{h}",
            "grub": self.grub_dir / f"grub.cfg-01-{h}",
            "ipxe": self.ipxe_dir / f"01-{h}.ipxe",
        }

    def default_paths(self) -> dict[str, Path]:
        return {
            "pxelinux": self.pxelinux_dir / "default",
            "grub": self.grub_dir / "grub.cfg",
            "ipxe": self.ipxe_dir / "default.ipxe",
            "ipxe_chain": self.ipxe_dir / "boot.ipxe",
        }

    def _rel(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    # ---- rendering ----------------------------------------------------------------------

    def _render(self, names: list[str], ctx: Mapping[str, Any]) -> str:
        try:
            return self.env.select_template(names).render(**ctx)
        except jinja2.TemplateNotFound:
            raise ConfigError(f"no boot template among {names}") from None
        except jinja2.TemplateError as e:
            raise ConfigError(f"boot template {names[0]}...: {e}") from None

    @staticmethod
    def _with_meta(text: str, meta: Mapping[str, Any]) -> str:
        line = "# lpmos " + json.dumps(meta, sort_keys=True, separators=(",", ":"))
        if text.startswith("#!"):
            first, _, rest = text.partition("\n")
            return f"{first}\n{line}\n{rest}"
        return f"{line}\n{text}"

    def _install_context(self, spec: BootSpec) -> dict[str, Any]:
        tag = f"{spec.os_type}-{spec.os_version}" if spec.os_version else spec.os_type
        if (not spec.kernel_path or not spec.initrd_path) and not spec.os_type:
            raise ValidationError("task names neither pxe.kernel_path nor os_type", sn=spec.sn)
        kernel = spec.kernel_path or str(
            Path(self._rel_cfg(self.config.kernel_dir)) / f"vmlinuz-{tag}"
        )
        initrd = spec.initrd_path or str(
            Path(self._rel_cfg(self.config.initrd_dir)) / f"initrd-{tag}.img"
        )
        reserved = {
            "BOOTIF": f"01-{mac_hyphen(spec.mac)}",
            "regional_url": self.regional_url,
            "sn": spec.sn,
            "auto_install": "true",
        }
        if spec.hostname:
            reserved["hostname"] = spec.hostname
        return {
            **self._base_context(),
            "mac": spec.mac,
            "mac_hyphen": mac_hyphen(spec.mac),
            "sn": spec.sn,
            "hostname": spec.hostname,
            "os_type": spec.os_type,
            "os_version": spec.os_version,
            "task_id": spec.task_id,
            "network": spec.network,
            "kernel": check_rel_path(kernel, self.root, "pxe.kernel_path"),
            "initrd": check_rel_path(initrd, self.root, "pxe.initrd_path"),
            "kernel_params": merge_params(
                self.default_params, spec.kernel_params, reserved=reserved
            ),
        }

    def _rel_cfg(self, p: Path) -> str:
        return self._rel(self._inside_root(p, "pxe.kernel_dir/initrd_dir"))

    def _base_context(self) -> dict[str, Any]:
        return {
            "http_base": self.http_base,
            "regional_url": self.regional_url,
            "menu_timeout": self.config.menu_timeout,
        }

    def render(self, spec: BootSpec) -> dict[str, str]:
        """The three config texts for ``spec`` (nothing written)."""
        ctx = self._install_context(spec)
        meta = {
            "mac": spec.mac,
            "sn": spec.sn,
            "hostname": spec.hostname,
            "os_type": spec.os_type,
            "os_version": spec.os_version,
            "task_id": spec.task_id,
            "kernel": ctx["kernel"],
            "initrd": ctx["initrd"],
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        out = {}
        for kind in KINDS:
            names = [f"{kind}/install.j2"]
            if spec.os_type:
                names[:0] = [f"{kind}/{spec.os_type}.j2"]
                if spec.os_version:
                    names[:0] = [f"{kind}/{spec.os_type}-{spec.os_version}.j2"]
            out[kind] = self._with_meta(self._render(names, ctx), meta)
        return out

    def render_defaults(self) -> dict[str, str]:
        action = self.config.default_action
        ctx: dict[str, Any] = {**self._base_context(), "sn": None, "mac": None}
        if action == "discovery":
            d = self.config.discovery
            ctx["kernel"] = check_rel_path(d.kernel_path, self.root, "pxe.discovery.kernel_path")
            ctx["initrd"] = check_rel_path(d.initrd_path, self.root, "pxe.discovery.initrd_path")
            ctx["kernel_params"] = merge_params(
                self.default_params,
                check_params(d.kernel_params, "pxe.discovery.kernel_params"),
                reserved={"regional_url": self.regional_url, "discovery": "true"},
            )
        meta = {"default": action}
        out = {k: self._with_meta(self._render([f"{k}/{action}.j2"], ctx), meta) for k in KINDS}
        grub_default = self._render([f"grub/{action}.j2"], ctx)
        out["grub"] = self._with_meta(
            self._render(["grub/grub.cfg.j2"], {**ctx, "default_body": grub_default}), meta
        )
        out["ipxe_chain"] = self._render(["ipxe/boot.ipxe.j2"], ctx)
        return out

    # ---- public API ---------------------------------------------------------------------

    def generate(self, spec: BootSpec | Mapping[str, Any]) -> list[Path]:
        """Write the pxelinux, GRUB and iPXE configs for one task; return the paths written."""
        if not isinstance(spec, BootSpec):
            spec = BootSpec.from_task(spec)
        texts = self.render(spec)
        paths = self.paths(spec.mac)
        with self._lock:
            for kind, text in texts.items():
                atomic_write(paths[kind], text)
        self.log.info(
            "PXE configs written", action="pxe_generated", mac=spec.mac, sn=spec.sn,
            os_type=spec.os_type, os_version=spec.os_version,
        )  # fmt: skip
        return [paths[k] for k in KINDS]

    def write_defaults(self) -> list[Path]:
        texts = self.render_defaults()
        paths = self.default_paths()
        with self._lock:
            for kind, text in texts.items():
                atomic_write(paths[kind], text)
        return list(paths.values())

    def remove(self, mac: str) -> list[Path]:
        """Delete one server's configs (idempotent); return the paths that existed."""
        removed = []
        with self._lock:
            for p in self.paths(mac).values():
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
                    removed.append(p)
        if removed:
            self.log.info("PXE configs removed", action="pxe_removed", mac=normalize_mac(mac))
        return removed

    def get(self, mac: str, reveal: bool = False) -> dict[str, Any]:
        """Metadata and contents of one server's configs (agent token hidden unless ``reveal``)."""
        mac = normalize_mac(mac)
        files: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        for kind, p in self.paths(mac).items():
            try:
                text = p.read_text(encoding="utf-8")
                st = p.stat()
            except FileNotFoundError:
                continue
            m = _META.search(text)
            if m and not meta:
                with contextlib.suppress(ValueError):
                    meta = json.loads(m.group(1))
            files[kind] = {
                "path": self._rel(p),
                "size": st.st_size,
                "mtime": datetime.fromtimestamp(st.st_mtime, UTC).isoformat(timespec="seconds"),
                "content": text if reveal else tokens.redact_cmdline(text),
            }
        if not files:
            raise NotFound(f"no PXE config for {mac}", mac=mac)
        return {"mac": mac, **{k: meta.get(k) for k in ("sn", "hostname", "os_type",
                "os_version", "task_id", "generated_at")}, "files": files}  # fmt: skip

    def macs(self) -> set[str]:
        """MACs with at least one per-MAC config file on disk."""
        found: set[str] = set()
        patterns = [
            (self.pxelinux_dir, "01-*", ""),
            (self.grub_dir, "grub.cfg-01-*", "grub.cfg-"),
            (self.ipxe_dir, "01-*.ipxe", ""),
        ]
        for d, glob, strip in patterns:
            if not d.is_dir():
                continue
            for p in d.glob(glob):
                name = p.name.removeprefix(strip).removesuffix(".ipxe")
                m = _MAC_FILE.match(name)
                if m:
                    found.add(m.group(1).replace("-", ":"))
        return found

    def list(self) -> list[dict[str, Any]]:
        out = []
        for mac in sorted(self.macs()):
            with contextlib.suppress(NotFound):
                info = self.get(mac)
                info["files"] = sorted(info["files"])
                out.append(info)
        return out

    def sync(self, tasks: Iterable[BootSpec | Mapping[str, Any]]) -> SyncResult:
        """Make the files match ``tasks`` exactly: write each, delete every other per-MAC config,
        rewrite the defaults. A task that cannot be rendered is reported, not fatal."""
        result = SyncResult()
        wanted: set[str] = set()
        for t in tasks:
            try:
                spec = t if isinstance(t, BootSpec) else BootSpec.from_task(t)
                wanted.add(spec.mac)
                self.generate(spec)
                result.written.append(spec.mac)
            except (ValidationError, ConfigError) as e:
                key = t.sn if isinstance(t, BootSpec) else str(t.get("sn") or t.get("mac"))
                result.failed[key] = e.message
                self.log.warning(
                    "PXE config not generated", action="pxe_sync_failed", sn=key, error=e.message
                )
        for mac in sorted(self.macs() - wanted):
            self.remove(mac)
            result.removed.append(mac)
        self.write_defaults()
        self.log.info(
            "PXE configs synchronised", action="pxe_synced",
            written=len(result.written), removed=len(result.removed), failed=len(result.failed),
        )  # fmt: skip
        return result
