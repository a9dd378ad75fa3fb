"""The task CLI against a real etcd: create/approve/list/show/watch/retry/delete, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from regional_client.config.secretbox import SecretBox, generate_key, write_key_file
from regional_client.config.secrets import SecretsConfig
from regional_client.model import Event
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from tests.helpers.cli import run_cli
from tests.helpers.etcd import EtcdProcess


@pytest.fixture
def cfg_file(tmp_path: Path, idc: str, etcd_server: EtcdProcess) -> str:
    f = tmp_path / "rc.yaml"
    f.write_text(yaml.safe_dump({"idc": idc, "state_dir": str(tmp_path / "state"),
                                 "etcd": {"endpoints": [etcd_server.endpoint]}}))  # fmt: skip
    return str(f)


async def test_create_approve_list_show_retry_delete(
    cfg_file: str, etcd_store: EtcdStore, keys: Keys
) -> None:
    r = run_cli(
        "task", "create", "-c", cfg_file, "--sn", "CLI1", "--mac", "52-54-00-00-00-01",
        "--ip", "10.1.0.5", "--bmc-ip", "127.0.0.1", "--bmc-type", "ipmi",
        "--bmc-password-stdin", stdin="s3cret\n",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "clear text" in r.stderr and "no secrets key" in r.stderr  # said, not silent
    stored = (await etcd_store.get(keys.task("CLI1"))).value
    assert stored["status"] == "pending" and stored["mac"] == "52:54:00:00:00:01"
    assert stored["bmc"]["password"] == "s3cret"

    again = run_cli("task", "create", "-c", cfg_file, "--sn", "CLI1", "--mac", "52:54:00:00:00:01")
    assert again.returncode == 1 and "already exists" in again.stderr

    assert run_cli("task", "approve", "-c", cfg_file, "CLI1").returncode == 0
    stored = (await etcd_store.get(keys.task("CLI1"))).value
    assert stored["status"] == "approved"
    assert stored["history"][-1]["from"] == "pending" and stored["history"][-1]["by"] == "cli"

    twice = run_cli("task", "approve", "-c", cfg_file, "CLI1")
    assert twice.returncode == 1 and "cannot approve a task that is approved" in twice.stderr

    listing = run_cli("task", "list", "-c", cfg_file, "--json")
    assert [t["sn"] for t in json.loads(listing.stdout)] == ["CLI1"]
    human = run_cli("task", "list", "-c", cfg_file)
    assert "CLI1" in human.stdout and "approved" in human.stdout

    shown = json.loads(run_cli("task", "show", "-c", cfg_file, "CLI1", "--json").stdout)
    assert shown["bmc"]["password"] == "***"
    assert "s3cret" not in run_cli("task", "show", "-c", cfg_file, "CLI1").stdout

    retry = run_cli("task", "retry", "-c", cfg_file, "CLI1")
    assert retry.returncode == 1 and "cannot retry a task that is approved" in retry.stderr
    from regional_client.cli.task import transition

    await transition(etcd_store, keys, "CLI1", Event.CLAIM, "test")
    await transition(etcd_store, keys, "CLI1", Event.FAIL, "test", "switch refused")
    assert run_cli("task", "retry", "-c", cfg_file, "CLI1").returncode == 0
    stored = (await etcd_store.get(keys.task("CLI1"))).value
    assert stored["status"] == "approved" and "error" not in stored

    assert run_cli("task", "delete", "-c", cfg_file, "CLI1").returncode == 0
    assert await etcd_store.get(keys.task("CLI1")) is None
    gone = run_cli("task", "delete", "-c", cfg_file, "CLI1")
    assert gone.returncode == 1 and "no task for serial CLI1" in gone.stderr


async def test_create_from_file_and_bad_input(
    cfg_file: str, tmp_path: Path, etcd_store: EtcdStore, keys: Keys
) -> None:
    f = tmp_path / "task.json"
    f.write_text(json.dumps({"sn": "CLI2", "mac": "52:54:00:00:00:02", "os_type": "rocky",
                             "operations": ["os_install"]}))  # fmt: skip
    r = run_cli("task", "create", "-c", cfg_file, "-f", str(f), "--approve", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"sn": "CLI2", "status": "approved"}
    assert (await etcd_store.get(keys.task("CLI2"))).value["operations"] == ["os_install"]

    before = await etcd_store.revision()
    cases = [
        (["--sn", "CLI3"], "mac is required"),
        (["--sn", "CLI3", "--mac", "nope"], "not a MAC address"),
        (["--sn", "bad/sn", "--mac", "52:54:00:00:00:03"], "invalid serial"),
        (["--sn", "CLI3", "--mac", "52:54:00:00:00:03", "--ip", "1.2.3"], "network.ip"),
        (["--sn", "CLI3", "--mac", "52:54:00:00:00:03", "--operations", "reboot"], "operations"),
        (["-f", str(tmp_path / "missing.json")], "cannot read"),
    ]
    for extra, needle in cases:
        r = run_cli("task", "create", "-c", cfg_file, *extra)
        assert r.returncode == 1, (extra, r.stdout)
        assert needle in r.stderr and r.stderr.count("\n") == 1, r.stderr
        assert "Traceback" not in r.stderr
    assert await etcd_store.revision() == before


def test_unreachable_etcd_is_one_line(tmp_path: Path) -> None:
    from tests.helpers.etcd import free_port

    f = tmp_path / "rc.yaml"
    f.write_text(yaml.safe_dump({"etcd": {"endpoints": [f"127.0.0.1:{free_port()}"],
                                          "dial_timeout": "500ms"}}))  # fmt: skip
    r = run_cli("task", "list", "-c", str(f))
    assert r.returncode == 1 and "etcd unreachable" in r.stderr and "Traceback" not in r.stderr


async def test_watch_json_until_settled(cfg_file: str, etcd_store: EtcdStore, keys: Keys) -> None:
    import asyncio
    import signal
    import subprocess
    import sys

    from tests.helpers.cli import ENV

    await etcd_store.put(keys.task("W1"), {"sn": "W1", "mac": "52:54:00:00:00:09",
                                           "status": "installing"})  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "regional_client", "task", "watch", "-c", cfg_file, "W1",
        "--json", "--timeout", "30", stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
    )  # fmt: skip
    first = await asyncio.wait_for(proc.stdout.readline(), 20)
    assert json.loads(first)["status"] == "installing"
    await etcd_store.update(keys.task("W1"), lambda t: {**t, "progress": {"percent": 40}})
    await etcd_store.update(keys.task("W1"), lambda t: {**t, "status": "completed"})
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    except TimeoutError:
        proc.send_signal(signal.SIGUSR1)  # every thread's stack on stderr (faulthandler)
        await asyncio.sleep(1)
        proc.kill()
        out, err = await proc.communicate()
        msg = f"watch did not end; stdout:\n{out.decode()}\nstderr:\n{err.decode()}"
        raise AssertionError(msg) from None
    lines = [json.loads(x) for x in out.decode().splitlines()]
    assert lines[-1]["status"] == "completed" and proc.returncode == 0, err
    assert any(x["progress"] == 40 for x in lines)


async def test_create_encrypts_the_bmc_password_or_refuses_it(
    tmp_path: Path, idc: str, etcd_server: EtcdProcess, etcd_store: EtcdStore, keys: Keys
) -> None:
    """With a secrets key, task create stores the BMC password encrypted (nothing in clear in
    etcd); with ``clear_passwords: refuse`` and no key it stores nothing."""
    key = tmp_path / "secret.key"
    write_key_file(key, generate_key())
    f = tmp_path / "keyed.yaml"
    f.write_text(yaml.safe_dump({"idc": idc, "state_dir": str(tmp_path / "s1"),
                                 "etcd": {"endpoints": [etcd_server.endpoint]},
                                 "secrets": {"key_file": str(key)}}))  # fmt: skip
    r = run_cli("task", "create", "-c", str(f), "--sn", "ENC1", "--mac", "52:54:00:00:00:0e",
                "--bmc-password-stdin", stdin="s3cret-pw\n")  # fmt: skip
    assert r.returncode == 0 and "clear" not in r.stderr, r.stderr
    kv = await etcd_store.get(keys.task("ENC1"))
    assert kv is not None
    stored = kv.value["bmc"]["password"]
    assert stored.startswith("enc:") and "s3cret-pw" not in json.dumps(kv.value)
    box = SecretBox.from_config(SecretsConfig(key_file=key))
    assert box.decrypt(stored) == "s3cret-pw"
    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump({"idc": idc, "state_dir": str(tmp_path / "s2"),
                                      "etcd": {"endpoints": [etcd_server.endpoint]},
                                      "secrets": {"clear_passwords": "refuse"}}))  # fmt: skip
    r = run_cli("task", "create", "-c", str(strict), "--sn", "ENC2", "--mac",
                "52:54:00:00:00:0f", "--bmc-password-stdin", stdin="s3cret-pw\n")  # fmt: skip
    assert r.returncode != 0 and "clear text" in r.stderr
    assert await etcd_store.get(keys.task("ENC2")) is None


def test_config_check_warns_about_clear_passwords(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"switch": {"type": "cisco", "host": "127.0.0.1",
                                            "password": "plain"},
                                 "bmc": {"default_password": "enc:AAAA"}}))  # fmt: skip
    r = run_cli("config", "check", str(f))
    assert r.returncode == 0 and "switch.default.password" in r.stderr
    assert "bmc.default_password" not in r.stderr
    data = yaml.safe_load(f.read_text())
    data["secrets"] = {"clear_passwords": "refuse"}
    f.write_text(yaml.safe_dump(data))
    r = run_cli("config", "check", str(f))
    assert r.returncode != 0 and "switch.default.password" in r.stderr
