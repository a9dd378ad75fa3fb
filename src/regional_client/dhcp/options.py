"""Reply options, pre-encoded: per-subnet blobs, network-boot choice, option 55 ordering.

The hot path never formats an option: each subnet's options are encoded once into
``{code: b"code len value"}``, and the final options blob for a given (subnet, message type,
parameter request list, boot answer, hostname) is cached, so a reply is one dict lookup plus the
header ``struct.pack``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from regional_client.dhcp.packet import MessageType, Opt, encode_option

__all__ = ["BootAnswer", "OptionBuilder", "SubnetOptions", "boot_answer"]

# options we can supply, in the order used when the client sends no list (option 55)
DEFAULT_ORDER = (
    Opt.SUBNET_MASK,
    Opt.ROUTER,
    Opt.DNS,
    Opt.HOSTNAME,
    Opt.DOMAIN_NAME,
    Opt.BROADCAST,
    Opt.TFTP_SERVER,
    Opt.BOOTFILE,
)
_PXE_PREFIX = b"PXEClient"
_HTTP_PREFIX = b"HTTPClient"
_HTTP_ARCHES = frozenset({15, 16, 18, 19, 20, 21})
# PXE vendor option 43: sub-option 6 (discovery control) = 8, "use the boot file name given,
# skip boot-server discovery" (PXE 2.1 spec, table 2-1).
_PXE_SKIP_DISCOVERY = encode_option(Opt.VENDOR_SPECIFIC, b"\x06\x01\x08\xff")


@dataclass(slots=True, frozen=True)
class BootAnswer:
    """What a client is told to boot: a file/URL and the vendor class to echo (option 60)."""

    file: str | None
    vendor: bytes | None = None


def client_arch(opts: dict[int, bytes]) -> int | None:
    v = opts.get(Opt.CLIENT_ARCH)
    return None if v is None else v[0] << 8 | v[1]


def is_ipxe(opts: dict[int, bytes]) -> bool:
    uc = opts.get(Opt.USER_CLASS)
    return Opt.IPXE_ENCAP in opts or (uc is not None and b"iPXE" in uc)


def boot_answer(
    opts: dict[int, bytes],
    mac: str,
    binding_file: str | None,
    boot_files: dict[int, str],
    default_file: str,
    ipxe_url: str,
    regional_url: str,
) -> BootAnswer:
    """Choose the boot file: iPXE → its per-MAC script URL (so it never loops back into the
    ROM loader), else the binding's file, else by architecture (option 93)."""
    vc = opts.get(Opt.VENDOR_CLASS, b"")
    if is_ipxe(opts):
        return BootAnswer(ipxe_url.format(regional_url=regional_url, mac=mac))
    arch = client_arch(opts)
    file = binding_file or boot_files.get(arch if arch is not None else 0, default_file)
    file = file.replace("{regional_url}", regional_url).replace("{mac}", mac)
    if vc.startswith(_HTTP_PREFIX) or arch in _HTTP_ARCHES:
        return BootAnswer(file, _HTTP_PREFIX)
    if vc.startswith(_PXE_PREFIX):
        return BootAnswer(file, _PXE_PREFIX)
    return BootAnswer(file)


class SubnetOptions:
    """Encoded options of one subnet (mask, router, DNS, domain, broadcast, lease times,
    server identifier, TFTP server)."""

    __slots__ = ("blobs", "lease_time")

    def __init__(
        self,
        mask: bytes,
        broadcast: bytes,
        routers: list[bytes],
        dns: list[bytes],
        domain: str | None,
        server_id: bytes,
        tftp: str | None,
        lease_time: int,
    ) -> None:
        self.lease_time = lease_time
        b: dict[int, bytes] = {Opt.SERVER_ID: encode_option(Opt.SERVER_ID, server_id)}
        b[Opt.SUBNET_MASK] = encode_option(Opt.SUBNET_MASK, mask)
        b[Opt.BROADCAST] = encode_option(Opt.BROADCAST, broadcast)
        if routers:
            b[Opt.ROUTER] = encode_option(Opt.ROUTER, b"".join(routers))
        if dns:
            b[Opt.DNS] = encode_option(Opt.DNS, b"".join(dns))
        if domain:
            b[Opt.DOMAIN_NAME] = encode_option(Opt.DOMAIN_NAME, domain.encode())
        if tftp:
            b[Opt.TFTP_SERVER] = encode_option(Opt.TFTP_SERVER, tftp.encode())
        t = struct.pack
        b[Opt.LEASE_TIME] = encode_option(Opt.LEASE_TIME, t("!I", lease_time))
        b[Opt.RENEWAL_TIME] = encode_option(Opt.RENEWAL_TIME, t("!I", lease_time // 2))
        b[Opt.REBINDING_TIME] = encode_option(Opt.REBINDING_TIME, t("!I", lease_time * 7 // 8))
        self.blobs = b


_MSG = {m: encode_option(Opt.MESSAGE_TYPE, bytes((m,))) for m in MessageType}


class OptionBuilder:
    """Assembles (and caches) the options blob of a reply."""

    def __init__(self, cache_size: int = 4096) -> None:
        self._cache: dict[tuple[object, ...], bytes] = {}
        self._cache_size = cache_size

    def build(
        self,
        sub_ident: int,
        so: SubnetOptions,
        msg: MessageType,
        prl: bytes | None,
        boot: BootAnswer | None,
        hostname: str | None,
        lease: bool = True,
    ) -> bytes:
        """Options of a reply; ``lease`` False for an INFORM answer (no lease times)."""
        key = (sub_ident, msg, prl, boot, hostname, lease)
        blob = self._cache.get(key)
        if blob is None:
            blob = self._assemble(so, msg, prl, boot, hostname, lease)
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[key] = blob
        return blob

    @staticmethod
    def _assemble(
        so: SubnetOptions,
        msg: MessageType,
        prl: bytes | None,
        boot: BootAnswer | None,
        hostname: str | None,
        lease: bool,
    ) -> bytes:
        b = so.blobs
        parts = [_MSG[msg], b[Opt.SERVER_ID]]
        if msg == MessageType.NAK:
            return b"".join(parts)
        if lease:
            parts += [b[Opt.LEASE_TIME], b[Opt.RENEWAL_TIME], b[Opt.REBINDING_TIME]]
        avail = dict(b)
        if hostname:
            avail[Opt.HOSTNAME] = encode_option(Opt.HOSTNAME, hostname.encode()[:255])
        if boot is not None and boot.file:
            avail[Opt.BOOTFILE] = encode_option(Opt.BOOTFILE, boot.file.encode())
        order = list(prl) if prl else list(DEFAULT_ORDER)
        if Opt.SUBNET_MASK not in order:
            order.insert(0, Opt.SUBNET_MASK)
        done: set[int] = {Opt.MESSAGE_TYPE, Opt.SERVER_ID, Opt.LEASE_TIME, Opt.RENEWAL_TIME}
        done.add(Opt.REBINDING_TIME)
        for code in order:
            if code in avail and code not in done:
                parts.append(avail[code])
                done.add(code)
        if boot is not None and boot.vendor is not None:
            parts.append(encode_option(Opt.VENDOR_CLASS, boot.vendor))
            if boot.vendor == _PXE_PREFIX:
                parts.append(_PXE_SKIP_DISCOVERY)
            if Opt.BOOTFILE not in done and Opt.BOOTFILE in avail:
                parts.append(avail[Opt.BOOTFILE])
        return b"".join(parts)
