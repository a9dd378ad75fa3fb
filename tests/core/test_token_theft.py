"""An attacker on the install network: what it can read, and what the agent API gives it.

Three network namespaces made here, joined by a bridge in the first: ``srv`` (the regional
client, its etcd, TFTP and HTTP boot on 10.77.0.1), ``victim`` (the server being installed,
MAC 52:54:00:77:00:10, install IP 10.77.0.10 — the static binding DHCP would give it) and
``attacker`` (another machine on the same L2, 10.77.0.66). Everything is real: the regional
client and etcd processes run inside ``srv``, the clients are curl inside the others.

The attacker reads the victim's boot configs (TFTP and HTTP boot, no credentials needed — as
firmware fetches them) and finds no token; it reports for the victim's serial before and after
the power action and gets nothing; it uses the token lifted from the victim's traffic from its
own address, then from the victim's address with its own MAC, and is refused each time; after
the next power action the victim's old token is dead too. Nothing the attacker sent changed
the task; every refusal is in the audit log.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from regional_client.core.tokens import token_hash
from tests.dhcp.netns import Netns, have_netns, unique

pytestmark = pytest.mark.skipif(
    not have_netns() or not shutil.which("etcd") or not shutil.which("curl"),
    reason="needs root, ip, etcd and curl (network namespaces)",
)

ROOT = Path(__file__).resolve().parents[2]
SRV, VICTIM, ATTACKER = "10.77.0.1", "10.77.0.10", "10.77.0.66"
VMAC, AMAC = "52:54:00:77:00:10", "52:54:00:77:00:66"
SN = "SN-VICTIM"
HELPER = """
import asyncio, json, sys
from regional_client.config import load_config
from regional_client.model import Task
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys

async def main(cfg_file, op, sn, arg):
    cfg = load_config(cfg_file)
    store = EtcdStore(list(cfg.etcd.endpoints))
    await store.connect()
    key = Keys(cfg.idc).task(sn)
    if op == "put":
        await store.put(key, json.loads(arg))
    elif op == "power":  # what Recorder.open_agent_session does before a power action
        def fn(old):
            t = Task.model_validate(old)
            t.open_agent_session()
            return t.to_json()
        await store.update(key, fn)
    kv = await store.get(key)
    print(json.dumps(kv.value if kv else None))
    await store.close()

asyncio.run(main(*sys.argv[1:5]))
"""


class Lab:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.srv = Netns(unique("tsrv"))
        self.victim = Netns(unique("tvic"))
        self.attacker = Netns(unique("tatk"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT / "src")}
        self.srv.ip("link", "add", "br0", "type", "bridge")
        self.srv.ip("addr", "add", f"{SRV}/24", "dev", "br0")
        self.srv.ip("link", "set", "br0", "up")
        for ns, ip, mac, name in ((self.victim, VICTIM, VMAC, "v"), (self.attacker, ATTACKER,
                                                                      AMAC, "a")):  # fmt: skip
            self.srv.ip("link", "add", f"p{name}", "type", "veth", "peer", "name", "eth0",
                        "netns", ns.name)  # fmt: skip
            self.srv.ip("link", "set", f"p{name}", "master", "br0", "up")
            ns.ip("link", "set", "eth0", "address", mac)
            ns.ip("addr", "add", f"{ip}/24", "dev", "eth0")
            ns.ip("link", "set", "eth0", "up")

    def start(self) -> None:
        tftp = self.tmp / "tftp"
        (tftp / "kernels").mkdir(parents=True)
        (tftp / "initrds").mkdir()
        (tftp / "kernels/vmlinuz-debian-12").write_bytes(b"kernel")
        (tftp / "initrds/initrd-debian-12.img").write_bytes(b"initrd")
        etcd_dir = self.tmp / "etcd"
        log = open(self.tmp / "etcd.log", "wb")  # noqa: SIM115
        self.procs.append(subprocess.Popen(self.srv.cmd(
            "etcd", "--data-dir", str(etcd_dir), "--listen-client-urls", "http://127.0.0.1:2379",
            "--advertise-client-urls", "http://127.0.0.1:2379", "--listen-peer-urls",
            "http://127.0.0.1:2380"), stdout=log, stderr=log))  # fmt: skip
        self._wait(self.srv, "http://127.0.0.1:2379/health")
        cfg = {
            "idc": "theft", "api_port": 8081, "state_dir": str(self.tmp / "state"),
            "api": {"listen_addr": "0.0.0.0", "public_url": f"http://{SRV}:8081",
                    "admin": {"port": 8082}},
            "etcd": {"endpoints": ["127.0.0.1:2379"]},
            "tftp": {"root_dir": str(tftp), "listen_addr": f"{SRV}:69"},
            "http_boot": {"enabled": True},
            "pxe": {"config_dir": str(tftp / "pxelinux.cfg"), "kernel_dir": str(tftp / "kernels"),
                    "initrd_dir": str(tftp / "initrds")},
            "dhcp": {"enabled": False}, "switch": {"enabled": False},
            "bmc": {"enabled": False}, "workflow": {"enabled": False},
            "logging": {"file": str(self.tmp / "rc.log"), "stderr": False},
        }  # fmt: skip
        self.cfg = self.tmp / "rc.yaml"
        self.cfg.write_text(yaml.safe_dump(cfg))
        (self.tmp / "helper.py").write_text(HELPER)
        task = {"sn": SN, "mac": VMAC, "status": "installing", "hostname": "victim",
                "os_type": "debian", "os_version": "12",
                "network": {"ip": VICTIM, "netmask": "255.255.255.0"},
                "operations": ["hardware_config", "os_install"]}  # fmt: skip
        self.etcd("put", json.dumps(task))
        log = open(self.tmp / "rc.out", "wb")  # noqa: SIM115
        self.procs.append(subprocess.Popen(self.srv.cmd(
            sys.executable, "-m", "regional_client", "run", "-c", str(self.cfg)),
            env=self.env, stdout=log, stderr=log))  # fmt: skip
        self._wait(self.victim, f"http://{SRV}:8081/api/v1/health")

    def _wait(self, ns: Netns, url: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = subprocess.run(ns.cmd("curl", "-sf", "-m", "2", url), capture_output=True)
            if r.returncode == 0:
                return
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError((self.tmp / "rc.out").read_text(errors="replace")[-2000:])
            time.sleep(0.2)
        raise RuntimeError(f"{url} did not answer")

    def etcd(self, op: str, arg: str = "") -> Any:
        out = subprocess.run(self.srv.cmd(sys.executable, str(self.tmp / "helper.py"),
                                          str(self.cfg), op, SN, arg),
                             env=self.env, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def call(self, ns: Netns, path: str, body: dict[str, Any], token: str | None = None,
             source: str | None = None) -> tuple[int, dict[str, Any]]:  # fmt: skip
        args = ["curl", "-s", "-m", "10", "-w", "\n%{http_code}", "-X", "POST",
                "-H", "Content-Type: application/json", "-d", json.dumps(body)]  # fmt: skip
        if token:  # a test's own secret on its own curl line: fine inside a throwaway netns
            args += ["-H", f"Authorization: Bearer {token}"]
        if source:
            args += ["--interface", source]
        out = subprocess.run(ns.cmd(*args, f"http://{SRV}:8081/api/v1{path}"),
                             capture_output=True, text=True, timeout=30)  # fmt: skip
        text, _, code = out.stdout.rpartition("\n")
        return int(code), json.loads(text) if text.strip() else {}

    def fetch(self, ns: Netns, url: str) -> str:
        out = subprocess.run(ns.cmd("curl", "-s", "-m", "10", url), capture_output=True, timeout=30)
        return out.stdout.decode("utf-8", "replace")

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for ns in (self.attacker, self.victim, self.srv):
            ns.delete()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    lab = Lab(tmp_path)
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()


def _no_token_in(text: str, token_sha: str) -> bool:
    return token_sha not in {token_hash(w) for w in re.findall(r"[A-Za-z0-9_=-]{16,}", text)}


def test_a_token_cannot_be_read_claimed_or_lifted(lab: Lab) -> None:
    report = {"sn": SN, "mac": VMAC, "hardware": {"fake": "inventory"}}
    hyphen = VMAC.replace(":", "-")
    # 1. What anyone on the install L2 can read without credentials: the victim's configs.
    served = "".join([
        lab.fetch(lab.attacker, f"http://{SRV}:8081/boot/ipxe/{VMAC}"),
        lab.fetch(lab.attacker, f"tftp://{SRV}/pxelinux.cfg/01-{hyphen}"),
        lab.fetch(lab.attacker, f"tftp://{SRV}/grub/grub.cfg-01-{hyphen}"),
    ])  # fmt: skip
    assert f"sn={SN}" in served and "regional_url=" in served  # it did read them
    assert "token" not in served
    # 2. Before the power action no session exists: a report gets nothing, writes nothing.
    assert lab.call(lab.attacker, "/report", report) == (200, {"result": "ok",
                                                               "status": "waiting"})  # fmt: skip
    # 3. The power action opens this boot's session; the attacker claims it first, naming the
    #    victim's MAC: refused (the neighbour table shows its own MAC; its address is not the
    #    install IP either), and counted in the task.
    lab.etcd("power")
    time.sleep(0.5)
    code, body = lab.call(lab.attacker, "/report", report)
    assert code == 403 and "claim from another MAC" in body["message"] and "token" not in body
    # 4. The victim's agent claims from its install IP and MAC: the token is in the answer.
    code, body = lab.call(lab.victim, "/report", {**report, "hardware": {"real": True}})
    assert code == 200 and body["status"] == "installing"
    token = body["token"]
    task = lab.etcd("get")
    assert task["agent_session"]["ip"] == VICTIM and task["agent_session"]["mac"] == VMAC
    assert token not in json.dumps(task)  # only its hash is stored
    assert _no_token_in(served, task["agent_session"]["token_sha256"])
    # 5. A second claim for this boot (the attacker again, now posing with the victim's MAC).
    code, _ = lab.call(lab.attacker, "/report", report)
    assert code in (403, 409)
    # 6. The token lifted from the victim's traffic, used from the attacker's own address.
    done = {"sn": SN, "operation": "os_install", "success": True}
    for path, body in (("/device/getNextOperation", {"sn": SN}),
                       ("/device/operationComplete", done)):  # fmt: skip
        code, answer = lab.call(lab.attacker, path, body, token)
        assert code == 403 and "another address" in answer["message"], answer
    # 7. ... and from the victim's address, with the attacker's MAC: the victim went quiet, the
    #    attacker took its IP, the regional client's ARP entry expired and was learnt anew.
    lab.victim.ip("link", "set", "eth0", "down")
    lab.attacker.ip("addr", "add", f"{VICTIM}/24", "dev", "eth0")
    lab.srv.ip("neigh", "flush", "dev", "br0")
    code, answer = lab.call(lab.attacker, "/device/operationComplete", done, token, VICTIM)
    assert code == 403 and "another MAC" in answer["message"], answer
    # 8. The victim comes back; its token works — until the next power action kills it.
    lab.attacker.ip("addr", "del", f"{VICTIM}/24", "dev", "eth0")
    lab.victim.ip("link", "set", "eth0", "up")
    lab.srv.ip("neigh", "flush", "dev", "br0")
    time.sleep(0.6)  # the regional client re-reads the neighbour table at most every 0.5 s
    code, answer = lab.call(lab.victim, "/device/getNextOperation", {"sn": SN}, token)
    assert code == 200 and answer["operation"] == "hardware_config", answer
    lab.etcd("power")
    time.sleep(0.5)
    code, _ = lab.call(lab.victim, "/device/getNextOperation", {"sn": SN}, token)
    assert code == 401
    # Nothing the attacker sent changed the task; every refusal was audited.
    task = lab.etcd("get")
    assert not task.get("results") and task["status"] == "installing"
    assert task["agent_session"]["boot"] == 2 and "token_sha256" not in task["agent_session"]
    audit = (lab.tmp / "state" / "audit.log").read_text()
    refused = [json.loads(x) for x in audit.splitlines() if '"agent.refused"' in x]
    reasons = {r["result"] for r in refused}
    assert {"claim from another MAC", "token used from another address",
            "token used from another MAC", "invalid agent token"} <= reasons, reasons
    assert token not in audit and token not in (lab.tmp / "rc.log").read_text()
