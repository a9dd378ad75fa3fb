"""The virtual rack: N simulated servers, each with a BMC, a switch port, PXE firmware and an agent.

Nothing here short-cuts the product: the regional client drives the rack through its real
protocols. A virtual server boots only when its BMC was told to (power on/reset/cycle) and
boots from the network only when the BMC's boot device for that boot was PXE:

* BMCs: IPMI (the pyghmi-based multi-BMC simulator, :mod:`.ipmi_sim`; ``ipmitool`` talks to it)
  or Redfish (``sushy-emulator --fake`` with one ComputerSystem per server; its external
  notifications tell the rack about power changes);
* switch: an SSH CLI emulator (Cisco/Huawei/H3C, :mod:`.switch_sim`) or Arista eAPI
  (:mod:`.arista_sim`), each server's MAC learned on its own port;
* network boot: :mod:`.pxe_client` — DHCP through a loopback relay, TFTP of the boot file and
  the generated ``pxelinux.cfg/01-<mac>``;
* the OS: the reference agent (:mod:`regional_client.agent`) with the ``noop`` installer, run
  with the kernel parameters the server found in its PXE config.

Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regional_client.core.logs import get_logger
from regional_rack.pxe_client import BootResult, RelayAgent, pxe_boot

log = get_logger("rack")

VENDORS = {"cisco": "cisco_ios", "huawei": "huawei_vrp", "h3c": "h3c_comware", "arista": "arista"}


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class VirtualServer:
    index: int
    sn: str
    mac: str
    ip: str
    port_name: str
    bmc: dict[str, Any]
    boots: list[BootResult] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    agent_task: asyncio.Task[Any] | None = None
    agent_outcome: str | None = None
    powered: bool = False
    boot_errors: list[str] = field(default_factory=list)

    def log(self, event: str) -> None:
        self.events.append(f"{time.strftime('%H:%M:%S')} {event}")


class VirtualRack:
    def __init__(
        self,
        count: int = 8,
        bmc: str = "ipmi",
        vendor: str = "cisco",
        workdir: Path | None = None,
        agent_seconds: float = 2.0,
        bmc_latency: float = 0.0,
        ipmi_processes: int = 0,
    ) -> None:
        if vendor not in VENDORS:
            raise ValueError(f"unknown switch vendor {vendor!r} (one of {', '.join(VENDORS)})")
        if bmc not in ("ipmi", "redfish"):
            raise ValueError("bmc must be ipmi or redfish")
        self.count = count
        self.bmc_kind = bmc
        self.vendor = vendor
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="rack-"))
        self.agent_seconds = agent_seconds
        self.bmc_latency = bmc_latency
        self.ipmi_processes = ipmi_processes
        self._ipmi_procs: list[asyncio.subprocess.Process] = []
        self._ipmi_readers: list[asyncio.Task[None]] = []
        self.servers: list[VirtualServer] = []
        self.switch: Any = None
        self.ipmi: Any = None
        self.redfish_proc: asyncio.subprocess.Process | None = None
        self.redfish_cert: Path | None = None
        """The Redfish emulator's self-signed certificate (pin it: bmc.redfish.ca_bundle)."""
        self._notify_server: asyncio.Server | None = None
        self.relay: RelayAgent | None = None
        self.tftp_addr: tuple[str, int] | None = None
        self.switch_password = "rack-" + os.urandom(4).hex()
        self.bmc_password = "rack-" + os.urandom(4).hex()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._redfish_state: dict[str, str | None] = {}

    # ----- layout ---------------------------------------------------------------------------

    def _plan(self) -> None:
        for i in range(self.count):
            n = i + 1
            self.servers.append(
                VirtualServer(
                    index=i,
                    sn=f"VRACK{n:04d}",
                    mac=f"52:54:00:ab:{n >> 8:02x}:{n & 0xFF:02x}",
                    ip=f"127.100.1.{10 + i}"
                    if i < 240
                    else f"127.100.{1 + i // 240}.{10 + i % 240}",
                    port_name="",
                    bmc={},
                )
            )

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._plan()
        # IPMI first: the simulator watches its sockets with select(), which needs fds < 1024.
        if self.bmc_kind == "ipmi" and self.ipmi_processes > 0:
            await self._start_ipmi_processes()
        elif self.bmc_kind == "ipmi":
            self._start_ipmi()
        await self._start_switch()
        if self.bmc_kind == "redfish":
            await self._start_redfish()

    async def _start_switch(self) -> None:
        vendor = VENDORS[self.vendor]
        ports = max(self.count + 2, 8)
        if vendor == "arista":
            from regional_rack.arista_sim import AristaSim

            self.switch = AristaSim(ports_count=ports, password=self.switch_password,
                                    workdir=self.workdir)  # fmt: skip
        else:
            from regional_rack.switch_sim import SimSwitch

            self.switch = SimSwitch(vendor=vendor, ports_count=ports,
                                    password=self.switch_password)  # fmt: skip
        for s in self.servers:
            s.port_name = self.switch.port_name(s.index + 1)
            self.switch.learn(s.mac, s.port_name)
            # Like a fresh rack: every server port starts in the production VLAN.
            self.switch.mutate(s.port_name, mode="access", access_vlan=200)
        await self.switch.start()

    def switch_inventory(self) -> list[dict[str, Any]]:
        return [self.switch_entry("rack-sw1", self.switch, self.vendor)]

    def switch_entry(self, name: str, sw: Any, vendor: str) -> dict[str, Any]:
        """One switch of the regional client's ``switch.inventory`` for a simulator ``sw``."""
        entry: dict[str, Any] = {
            "name": name,
            "type": vendor,
            "host": "127.0.0.1",
            "port": sw.port,
            "username": sw.username,
            "password": self.switch_password,
            "install_vlan": 100,
            "production_vlan": 200,
        }
        if vendor == "arista":
            entry["protocol"] = "rest"
            entry["ca_bundle"] = str(sw.certfile)  # its self-signed certificate, pinned
        return entry

    # ----- IPMI -----------------------------------------------------------------------------

    def _start_ipmi(self) -> None:
        from regional_rack.ipmi_sim import IpmiSimulator, SimBmcState

        self.ipmi = IpmiSimulator()
        for s in self.servers:
            bmc = self.ipmi.add(SimBmcState(f"bmc-{s.sn}", "admin", self.bmc_password))
            bmc.state.latency = self.bmc_latency
            bmc.add_listener(
                lambda st, ev, s=s: self._threadsafe(self._on_bmc, s, ev, st.last_boot_device)
            )
            s.bmc = {"ip": "127.0.0.1", "port": bmc.port, "type": "ipmi",
                     "username": "admin", "password": self.bmc_password}  # fmt: skip
        self.ipmi.start()

    async def _start_ipmi_processes(self) -> None:
        """The BMCs in ``ipmi_processes`` simulator processes (``python -m ...ipmi_sim --events``).

        pyghmi reads every socket of its process on each wake-up; a few hundred BMCs in one
        process saturate a core. Split, each process serves its share and reports power events
        on stdout. The password reaches them in a file (mode 0600), not on a command line.
        """
        pw = self.workdir / "bmc-password"
        pw.touch(mode=0o600)
        pw.write_text(self.bmc_password)
        n = self.ipmi_processes
        shards = [self.servers[k::n] for k in range(n) if self.servers[k::n]]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
        for shard in shards:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "regional_rack.ipmi_sim", "--count",
                str(len(shard)), "--password-file", str(pw), "--latency", str(self.bmc_latency),
                "--events", stdout=asyncio.subprocess.PIPE, env=env,
                limit=1 << 20,
            )  # fmt: skip
            self._ipmi_procs.append(proc)
            assert proc.stdout is not None
            for s in shard:
                line = await asyncio.wait_for(proc.stdout.readline(), 60)
                if not line:
                    raise RuntimeError("IPMI simulator process exited before it was ready")
                port = json.loads(line)["port"]
                s.bmc = {"ip": "127.0.0.1", "port": port, "type": "ipmi",
                         "username": "admin", "password": self.bmc_password}  # fmt: skip
            if not json.loads(await asyncio.wait_for(proc.stdout.readline(), 60)).get("ready"):
                raise RuntimeError("IPMI simulator process did not say ready")
            self._ipmi_readers.append(asyncio.create_task(self._ipmi_events(proc, shard)))

    async def _ipmi_events(
        self, proc: asyncio.subprocess.Process, shard: list[VirtualServer]
    ) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            try:
                msg = json.loads(line)
                s = shard[msg["index"]]
            except (ValueError, KeyError, IndexError):
                log.warning("unreadable IPMI simulator event", event_line=line[:200])
                continue
            self._on_bmc(s, msg["event"], msg.get("boot"))

    def _threadsafe(self, fn: Any, *args: Any) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(fn, *args)

    def _on_bmc(self, s: VirtualServer, event: str, boot_device: str | None) -> None:
        s.log(event)
        if not event.startswith("power:"):
            return
        action = event.split(":", 1)[1]
        if action in ("off", "soft"):
            self._power_off(s)
        else:
            self._power_on(s, boot_device or "none")

    # ----- Redfish --------------------------------------------------------------------------

    async def _start_redfish(self) -> None:
        exe = shutil.which("sushy-emulator")
        if exe is None:
            raise RuntimeError("sushy-emulator not found: pip install sushy-tools")
        notify_port = free_port()
        self._notify_server = await asyncio.start_server(
            self._on_notification, "127.0.0.1", notify_port
        )
        systems = []
        for s in self.servers:
            uuid = f"00000000-0000-4000-8000-{s.index + 1:012d}"
            systems.append({"uuid": uuid, "name": s.sn, "power_state": "Off",
                            "external_notifier": True, "nics": [{"mac": s.mac}]})  # fmt: skip
            self._redfish_state[uuid] = "Off"
        port = free_port()
        conf = self.workdir / "sushy.conf"
        # HTTPS with a self-signed certificate the regional client pins (bmc.redfish.ca_bundle):
        # the BMC credentials never cross even loopback in clear, and TLS stays verified.
        tls_dir = self.workdir / "redfish-tls"
        tls_dir.mkdir(parents=True, exist_ok=True)
        from regional_rack.arista_sim import self_signed

        self.redfish_cert, key = self_signed(tls_dir)
        conf.write_text(
            f"SUSHY_EMULATOR_FAKE_DRIVER = True\n"
            f"SUSHY_EMULATOR_FAKE_SYSTEMS = {systems!r}\n"
            f"EXTERNAL_NOTIFICATION_URL = 'http://127.0.0.1:{notify_port}/notify'\n"
            f"SUSHY_EMULATOR_STATE_DIR = {str(self.workdir / 'sushy-state')!r}\n"
            f"SUSHY_EMULATOR_SSL_CERT = {str(self.redfish_cert)!r}\n"
            f"SUSHY_EMULATOR_SSL_KEY = {str(key)!r}\n"
        )
        log_f = open(self.workdir / "sushy.log", "wb")  # noqa: SIM115 (handed to the child)
        self.redfish_proc = await asyncio.create_subprocess_exec(
            exe, "--fake", "--config", str(conf), "-i", "127.0.0.1", "-p", str(port),
            stdout=log_f, stderr=log_f, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )  # fmt: skip
        log_f.close()
        for s, sysdef in zip(self.servers, systems, strict=True):
            s.bmc = {"ip": "127.0.0.1", "port": port, "type": "redfish", "username": "admin",
                     "password": self.bmc_password, "system_id": sysdef["uuid"]}  # fmt: skip
        await self._wait_http(port)

    async def _wait_http(self, port: int, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                return
            except OSError:
                await asyncio.sleep(0.2)
        raise RuntimeError("sushy-emulator did not start")

    async def _on_notification(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """sushy-emulator PUTs the whole system record after every change."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            system: dict[str, Any] = json.loads(await reader.readexactly(length)) if length else {}
            writer.write(
                b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            writer.close()
        uuid = system.get("uuid")
        if not isinstance(uuid, str):
            return  # not a system record: every emulated system has a uuid
        before = self._redfish_state.get(uuid)
        now = system.get("power_state")
        self._redfish_state[uuid] = now
        s = next((x for x in self.servers if x.bmc.get("system_id") == uuid), None)
        if s is None or before == now:
            return
        s.log(f"redfish power {before}→{now} boot={system.get('boot_device')}")
        if now == "On":
            device = str(system.get("boot_device", "Hdd")).lower()
            self._power_on(s, "pxe" if device == "pxe" else "disk")
        elif now == "Off":
            self._power_off(s)

    # ----- power and boot -------------------------------------------------------------------

    def _power_off(self, s: VirtualServer) -> None:
        s.powered = False
        if s.agent_task is not None:
            s.agent_task.cancel()
            s.agent_task = None

    def _power_on(self, s: VirtualServer, boot_device: str) -> None:
        self._power_off(s)
        s.powered = True
        if boot_device == "pxe":
            s.agent_task = asyncio.get_running_loop().create_task(self._netboot(s))
        else:
            s.log("booted from disk")

    async def _netboot(self, s: VirtualServer) -> None:
        assert self.relay is not None and self.tftp_addr is not None
        try:
            boot = await pxe_boot(self.relay, s.mac, self.tftp_addr)
        except Exception as e:
            s.boot_errors.append(str(e))
            s.log(f"PXE boot failed: {e}")
            return
        s.boots.append(boot)
        s.log(f"PXE: {boot.dhcp.ip} via {boot.config_name}")
        if boot.cmdline == "localboot":
            s.log("PXE config says local boot")
            return
        await self._run_agent(s, boot)

    async def _run_agent(self, s: VirtualServer, boot: BootResult) -> None:
        from regional_client.agent.client import AgentClient
        from regional_client.agent.loop import LoopConfig, run_loop
        from regional_client.agent.operations import OpContext

        p = boot.params
        url, sn = p.get("regional_url"), p.get("sn") or s.sn
        if not url:
            s.log("no regional_url on the kernel command line")
            return
        hardware = {
            "system": {"vendor": "LPMOS", "product": "Virtual Rack Server", "serial": s.sn},
            "cpu": {"count": 2, "model": "virtual"},
            "memory": {"total_bytes": 4 << 30},
            "nics": [{"name": "eth0", "mac": s.mac, "link": True}],
            "disks": [{"name": "vda", "size_bytes": 20 << 30}],
        }
        # From the install IP DHCP gave it (a loopback address of its own): the agent token is
        # bound to that address. No token on the command line: the first report brings it.
        async with AgentClient(url, sn, local_address=boot.dhcp.ip) as client:
            ctx = OpContext(client=client, installer="noop", workdir=self.workdir)
            outcome = await run_loop(client, hardware, s.mac, ctx, LoopConfig(idle_interval=1.0))
        s.agent_outcome = str(outcome)
        s.log(f"agent finished: {outcome}")

    # ----- the regional client's view -------------------------------------------------------

    async def attach(self, dhcp_server: tuple[str, int], tftp_addr: tuple[str, int]) -> int:
        """Open the relay towards the regional client's DHCP; returns the relay's port."""
        self.relay = RelayAgent(dhcp_server)
        self.tftp_addr = tftp_addr
        return await self.relay.open()

    def tasks(self, name_ports: bool = False) -> list[dict[str, Any]]:
        """One install task per server, as a control plane would write it. ``name_ports``: the
        task names its switch port (an inventory-driven control plane) instead of leaving the
        regional client to find it by MAC."""
        tasks: list[dict[str, Any]] = [
            {
                "task_id": f"task-{s.sn}",
                "sn": s.sn,
                "mac": s.mac,
                "status": "approved",
                "hostname": f"vrack-{s.index + 1:04d}",
                "os_type": "debian",
                "os_version": "12",
                "network": {"ip": s.ip, "netmask": "255.0.0.0", "gateway": "127.0.0.1"},
                "bmc": dict(s.bmc),
                "switch": {"name": "rack-sw1"},
                "operations": ["hardware_config", "os_install"],
                "hardware_scripts": [
                    {
                        "name": "raid",
                        "interpreter": "/bin/sh",
                        "content": "echo raid ok",
                        "timeout": 30,
                    },
                ],
                "operation_params": {
                    "os_install": {
                        "installer": "noop",
                        "steps": 4,
                        "delay": self.agent_seconds / 4,
                    },
                },
            }
            for s in self.servers
        ]
        if name_ports:
            for t, s in zip(tasks, self.servers, strict=True):
                t["switch"]["port"] = s.port_name
        return tasks

    async def stop(self) -> None:
        for s in self.servers:
            self._power_off(s)
        if self.relay is not None:
            self.relay.close()
        if self.switch is not None:
            with contextlib.suppress(Exception):
                await self.switch.stop()
        if self.ipmi is not None:
            self.ipmi.stop()
        for proc in self._ipmi_procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self._ipmi_procs:
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for t in self._ipmi_readers:
            t.cancel()
        if self.redfish_proc is not None and self.redfish_proc.returncode is None:
            self.redfish_proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.redfish_proc.wait(), 10)
            except TimeoutError:
                self.redfish_proc.kill()
                await self.redfish_proc.wait()
        if self._notify_server is not None:
            self._notify_server.close()
