"""Test bench for the install workflow: simulated BMCs and switch, and scripted agents.

* BMCs: the pyghmi-based IPMI simulator (real ``ipmitool`` talks to it);
* switch: the SSH Cisco emulator (real SSH), every server's MAC learned on its own port, every
  port starting in the production VLAN 200;
* agents: when a BMC is told to power on/reset with a PXE boot pending, the "server boots" and a
  scripted agent — the reference agent's operation loop with the ``noop`` installer, over real
  HTTP — runs. Without DHCP/TFTP in this bench, the agent's kernel parameters (URL, token) are
  taken from the task in etcd, which is where the PXE config generator takes them from too;
  the full network boot is exercised by the virtual-rack tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regional_client.agent.client import AgentClient
from regional_client.agent.loop import LoopConfig, run_loop
from regional_client.agent.operations import OpContext
from regional_client.core.errors import ProtocolError
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from regional_rack.ipmi_sim import IpmiSimulator, SimBmc, SimBmcState
from regional_rack.pxe_client import RelayAgent
from regional_rack.switch_sim import SimSwitch

BMC_PASSWORD = "bmc-secret-pw"
SWITCH_PASSWORD = "switch-secret-pw"


@dataclass
class Node:
    index: int
    sn: str
    mac: str
    port: str
    bmc: SimBmc
    agent: asyncio.Task[Any] | None = None
    boots: int = 0
    silent: bool = False
    """A node whose agent never starts (a server that fails to network-boot)."""
    fail_boots: int = 0
    """Boots (from the first) that stop after DHCP: the firmware got its lease, then gave up
    (a lost transfer), so no agent starts. Needs DHCP (``enable_dhcp``)."""
    fail_operation: str | None = None
    outcomes: list[str] = field(default_factory=list)
    leases: list[str] = field(default_factory=list)
    """Addresses the regional client's DHCP handed this node at each boot (with DHCP on)."""
    static_ip: str | None = None
    """The install IP its task names (DHCP binding); None: an address from the pool."""


class Bench:
    def __init__(self, store: EtcdStore, keys: Keys, count: int, workdir: Path) -> None:
        self.store = store
        self.keys = keys
        self.count = count
        self.workdir = workdir
        self.switch = SimSwitch(vendor="cisco_ios", ports_count=max(count, 4) + 2,
                                password=SWITCH_PASSWORD)  # fmt: skip
        self.ipmi = IpmiSimulator()
        self.nodes: list[Node] = []
        self.regional_url = ""
        self.relay: RelayAgent | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for i in range(self.count):
            n = i + 1
            sn, mac = f"WF{n:04d}", f"52:54:00:cd:{n >> 8:02x}:{n & 0xFF:02x}"
            port = self.switch.port_name(n)
            self.switch.learn(mac, port)
            self.switch.mutate(port, mode="access", access_vlan=200, description="prod")
            bmc = self.ipmi.add(SimBmcState(f"bmc-{sn}", "admin", BMC_PASSWORD))
            node = Node(i, sn, mac, port, bmc)
            bmc.add_listener(lambda st, ev, node=node: self._loop.call_soon_threadsafe(
                self._on_power, node, st, ev))  # fmt: skip
            self.nodes.append(node)
        await self.switch.start()
        self.ipmi.start()

    async def enable_dhcp(self, server: tuple[str, int]) -> int:
        """Servers boot with a relayed DHCP exchange against ``server`` (even nodes have a
        static install IP in their task, odd ones take one from the pool); returns the
        relay's port (the regional client's ``dhcp.relay_reply_port``)."""
        self.relay = RelayAgent(server)
        for n in self.nodes:
            n.static_ip = f"127.100.9.{10 + n.index}" if n.index % 2 == 0 else None
        return await self.relay.open()

    async def stop(self) -> None:
        if self.relay is not None:
            self.relay.close()
        for n in self.nodes:
            if n.agent is not None:
                n.agent.cancel()
        agents = [n.agent for n in self.nodes if n.agent]
        if agents:  # bounded: a teardown must not hang a whole test run
            await asyncio.wait(agents, timeout=10)
        self.ipmi.stop()
        await self.switch.stop()

    def config(self, **workflow: Any) -> dict[str, Any]:
        wf = {"agent_timeout": "20s", "power_timeout": "30s", "step_timeout": "30s",
              "step_retries": 2, "retry_backoff": "200ms"}  # fmt: skip
        wf.update(workflow)
        return {
            "switch": {
                "enabled": True,
                "batch_window": "100ms",
                "inventory": [
                    {
                        "name": "tor1",
                        "type": "cisco",
                        "host": "127.0.0.1",
                        "port": self.switch.port,
                        "username": "admin",
                        "password": SWITCH_PASSWORD,
                        "install_vlan": 100,
                        "production_vlan": 200,
                    }
                ],
            },
            "bmc": {
                "enabled": True,
                "timeout": "10s",
                "retries": 1,
                "retry_backoff": "200ms",
                "power_timeout": "10s",
                "poll_interval": "200ms",
            },
            "workflow": {"enabled": True, **wf},
        }

    def task(self, node: Node, **extra: Any) -> dict[str, Any]:
        t = {
            "task_id": f"task-{node.sn}", "sn": node.sn, "mac": node.mac, "status": "approved",
            "hostname": f"host-{node.index}",
            "bmc": {"ip": "127.0.0.1", "port": node.bmc.port, "type": "ipmi",
                    "username": "admin", "password": BMC_PASSWORD},
            "switch": {"name": "tor1"},
            "operations": ["hardware_config", "os_install"],
            "hardware_scripts": [{"name": "raid", "interpreter": "/bin/sh",
                                  "content": "echo raid ok", "timeout": 30}],
            "operation_params": {"os_install": {"installer": "noop", "steps": 2, "delay": 0.1}},
        }  # fmt: skip
        if node.fail_operation:
            t["operation_params"]["os_install"]["fail"] = True
        if node.static_ip:
            t["network"] = {"ip": node.static_ip, "netmask": "255.0.0.0", "gateway": "127.0.0.1"}
        t.update(extra)
        return t

    async def approve_all(self, nodes: list[Node] | None = None) -> None:
        for node in nodes or self.nodes:
            await self.store.put(self.keys.task(node.sn), self.task(node))

    # ----- the "servers" --------------------------------------------------------------------

    def _on_power(self, node: Node, state: SimBmcState, event: str) -> None:
        if not event.startswith("power:"):
            return
        if node.agent is not None:
            node.agent.cancel()
            node.agent = None
        action = event.split(":", 1)[1]
        if action in ("off", "soft") or state.last_boot_device != "pxe" or node.silent:
            return
        node.boots += 1
        node.agent = asyncio.get_running_loop().create_task(self._agent(node))

    async def _agent(self, node: Node) -> None:
        await asyncio.sleep(0.2)  # firmware + PXE
        if self.relay is not None:
            try:  # firmware retransmits for a while, then gives up (the boot fails)
                lease = await self.relay.exchange(node.mac, timeout=1.0, attempts=4)
            except ProtocolError:
                return
            node.leases.append(lease.ip)
            if node.boots <= node.fail_boots:
                return
        # The agent calls from the install IP DHCP gave it (its token is bound to that
        # address); no token from anywhere: the first report of the boot brings it.
        ip = node.leases[-1] if node.leases else node.static_ip
        async with AgentClient(self.regional_url, node.sn, local_address=ip) as client:
            ctx = OpContext(client=client, installer="noop", workdir=self.workdir)
            with contextlib.suppress(Exception):
                out = await run_loop(client, {"cpu": {"count": 1}}, node.mac, ctx,
                                     LoopConfig(idle_interval=0.5))  # fmt: skip
                node.outcomes.append(str(out))

    # ----- assertions helpers ---------------------------------------------------------------

    def port(self, node: Node) -> Any:
        return self.switch.ports[node.port]
