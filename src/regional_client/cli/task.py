"""``regional-client task create|approve|list|show|watch|retry|delete`` — straight to etcd.

The CLI is a control-plane stand-in for people: it writes the same JSON the control plane
would, with the same compare-and-swap rules the service uses. Human tables by default,
``--json`` for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import pydantic
import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table

from regional_client.cli.common import add_config_arg, config_of, open_store
from regional_client.config import Config
from regional_client.config.secretbox import SecretBox, check_clear_passwords, is_encrypted
from regional_client.core.errors import Conflict, NotFound, ValidationError
from regional_client.model import FINAL, Event, Status, Task, now_iso
from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("task", help="create, approve, inspect and retry install tasks")
    s = p.add_subparsers(dest="task_command", metavar="ACTION")
    s.required = True

    c = s.add_parser("create", help="create a task (fields as options or --file JSON/YAML)")
    add_config_arg(c)
    c.add_argument("--file", "-f", help="task JSON or YAML (options below override it)")
    c.add_argument("--sn")
    c.add_argument("--mac")
    c.add_argument("--hostname")
    c.add_argument("--os-type")
    c.add_argument("--os-version")
    c.add_argument("--ip", help="install-time IPv4 address (static DHCP binding)")
    c.add_argument("--netmask")
    c.add_argument("--gateway")
    c.add_argument("--dns", action="append", help="DNS server (repeat)")
    c.add_argument("--bmc-ip")
    c.add_argument("--bmc-type", choices=["ipmi", "redfish"])
    c.add_argument("--bmc-port", type=int)
    c.add_argument("--bmc-username")
    c.add_argument(
        "--bmc-password-stdin", action="store_true", help="read the BMC password from stdin"
    )
    c.add_argument("--switch", help="switch name from the inventory")
    c.add_argument("--switch-port", help="switch port (found by MAC when absent)")
    c.add_argument("--operations", help="comma-separated (default hardware_config,os_install)")
    c.add_argument("--kernel", help="kernel path under the TFTP root")
    c.add_argument("--initrd", help="initrd path under the TFTP root")
    c.add_argument("--kernel-params")
    c.add_argument("--approve", action="store_true", help="create it approved")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_create)

    for name, helptext, fn in [
        ("approve", "approve pending tasks (the regional client then installs them)", _approve),
        (
            "retry",
            "set failed tasks back to approved (one that failed in cleanup only redoes cleanup)",
            _retry,
        ),
        ("delete", "delete tasks (the regional client cleans up what it set up)", _delete),
    ]:
        a = s.add_parser(name, help=helptext)
        add_config_arg(a)
        a.add_argument("sn", nargs="+")
        a.add_argument("--json", action="store_true")
        a.set_defaults(func=fn)

    ls = s.add_parser("list", help="list tasks")
    add_config_arg(ls)
    ls.add_argument("--status", choices=[st.value for st in Status])
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)

    sh = s.add_parser("show", help="show one task")
    add_config_arg(sh)
    sh.add_argument("sn")
    sh.add_argument("--json", action="store_true")
    sh.add_argument("--audit", action="store_true", help="also print the task's audit trail")
    sh.set_defaults(func=_show)

    w = s.add_parser("watch", help="live status and progress until the tasks settle")
    add_config_arg(w)
    w.add_argument("sn", nargs="*", help="serials (default: all tasks)")
    w.add_argument("--timeout", type=float, default=0, help="give up after N seconds (0: never)")
    w.add_argument("--json", action="store_true", help="print JSON lines of changes instead")
    w.set_defaults(func=_watch)


# ----- create ---------------------------------------------------------------------------------


def _load_file(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ValidationError(f"{path}: cannot read: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as e:
        raise ValidationError(f"{path}: not valid JSON/YAML: {e}") from None
    if not isinstance(data, dict):
        raise ValidationError(f"{path}: a task must be a mapping")
    return data


def task_from_args(args: argparse.Namespace) -> Task:
    data: dict[str, Any] = _load_file(args.file) if args.file else {}

    def put(path: str, value: Any) -> None:
        if value is None:
            return
        node = data
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value

    put("sn", args.sn)
    put("mac", args.mac)
    put("hostname", args.hostname)
    put("os_type", args.os_type)
    put("os_version", args.os_version)
    put("network.ip", args.ip)
    put("network.netmask", args.netmask)
    put("network.gateway", args.gateway)
    put("network.dns_servers", args.dns)
    put("bmc.ip", args.bmc_ip)
    put("bmc.type", args.bmc_type)
    put("bmc.port", args.bmc_port)
    put("bmc.username", args.bmc_username)
    if args.bmc_password_stdin:
        put("bmc.password", sys.stdin.readline().rstrip("\n"))
    put("switch.name", args.switch)
    put("switch.port", args.switch_port)
    if args.operations:
        put("operations", [o.strip() for o in args.operations.split(",") if o.strip()])
    put("pxe.kernel_path", args.kernel)
    put("pxe.initrd_path", args.initrd)
    put("pxe.kernel_params", args.kernel_params)
    for required in ("sn", "mac"):
        if not data.get(required):
            raise ValidationError(f"{required} is required (--{required} or in --file)")
    data.setdefault("task_id", f"task-{data['sn']}")
    data.setdefault("status", "pending")
    now = now_iso()
    data.setdefault("created_at", now)
    data["updated_at"] = now
    try:
        task = Task.model_validate(data)
    except pydantic.ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "task"
        msg = err["msg"].removeprefix("Value error, ")
        raise ValidationError(f"{loc}: {msg}") from None
    if args.approve and task.status == Status.PENDING:
        task.transition(Event.APPROVE, "cli", "created with --approve")
    return task


def _protect_password(cfg: Config, task: Task) -> None:
    """A clear BMC password is encrypted when a key is configured; otherwise warned about or
    refused (``secrets.clear_passwords``). It never reaches etcd in clear silently."""
    pw = task.bmc.password
    if not pw or is_encrypted(pw):
        return
    box = SecretBox.from_config(cfg.secrets, Path(cfg.state_dir))
    if box.has_key:
        task.bmc.password = box.encrypt(pw)
        return
    check_clear_passwords(cfg, ["bmc.password of the task"], lambda t: print(
        f"warning: {t}; no secrets key is configured, so it is stored in clear",
        file=sys.stderr))  # fmt: skip


async def _create(args: argparse.Namespace) -> int:
    cfg = config_of(args)
    task = task_from_args(args)
    _protect_password(cfg, task)
    store = await open_store(cfg)
    try:
        keys = Keys(cfg.idc)
        if not await store.create(keys.task(task.sn), task.to_json()):
            raise Conflict(f"a task for {task.sn} already exists (delete it first)")
    finally:
        await store.close()
    _out(args, {"sn": task.sn, "status": task.status.value}, f"created {task.sn} ({task.status})")
    return 0


# ----- transitions ----------------------------------------------------------------------------


async def transition(
    store: EtcdStore, keys: Keys, sn: str, event: Event, by: str, reason: str = ""
) -> Task:
    """CAS a status transition (validated by the state table) onto the stored task."""
    result: dict[str, Task] = {}

    def fn(old: dict[str, Any] | None) -> dict[str, Any]:
        if old is None:
            raise NotFound(f"no task for serial {sn}")
        task = Task.model_validate(old)
        cleanup_only = event == Event.RETRY and task.failed_in_cleanup_after_install()
        task.transition(event, by, reason)
        if event in (Event.RETRY, Event.REINSTALL) and not cleanup_only:
            task.results = {}
            task.steps = []
            task.error = None
            task.agent.reported_at = None
        old.update(task.to_json())
        if task.error is None:
            old.pop("error", None)
        result["task"] = task
        return old

    await store.update(keys.task(sn), fn)
    return result["task"]


async def _transition_many(args: argparse.Namespace, event: Event, verb: str) -> int:
    cfg = config_of(args)
    store = await open_store(cfg)
    keys = Keys(cfg.idc)
    rc = 0
    try:
        for sn in args.sn:
            try:
                task = await transition(store, keys, sn, event, "cli")
                _out(args, {"sn": sn, "status": task.status.value}, f"{verb} {sn}")
            except (NotFound, Conflict) as e:
                print(f"regional-client: error: {sn}: {e.message}", file=sys.stderr)
                rc = 1
    finally:
        await store.close()
    return rc


async def _approve(args: argparse.Namespace) -> int:
    return await _transition_many(args, Event.APPROVE, "approved")


async def _retry(args: argparse.Namespace) -> int:
    return await _transition_many(args, Event.RETRY, "retrying")


async def _delete(args: argparse.Namespace) -> int:
    cfg = config_of(args)
    store = await open_store(cfg)
    keys = Keys(cfg.idc)
    rc = 0
    try:
        for sn in args.sn:
            if await store.delete(keys.task(sn)):
                _out(args, {"sn": sn, "deleted": True}, f"deleted {sn}")
            else:
                print(f"regional-client: error: no task for serial {sn}", file=sys.stderr)
                rc = 1
    finally:
        await store.close()
    return rc


# ----- reading ---------------------------------------------------------------------------------


async def load_tasks(store: EtcdStore, keys: Keys) -> tuple[dict[str, Task], dict[str, str]]:
    kvs, _ = await store.get_prefix(keys.machines_prefix)
    tasks: dict[str, Task] = {}
    invalid: dict[str, str] = {}
    for kv in kvs:
        sn = keys.sn_from_task_key(kv.key)
        if sn is None:
            continue
        try:
            tasks[sn] = Task.model_validate(kv.value)
        except (pydantic.ValidationError, TypeError) as e:
            invalid[sn] = str(e).splitlines()[0]
    return tasks, invalid


def _step_of(t: Task) -> str:
    running = [s.name for s in t.steps if s.status == "running"]
    if running:
        return running[0]
    failed = [s.name for s in t.steps if s.status == "failed"]
    return failed[0] if failed else ""


def _bar(pct: float, width: int = 20) -> str:
    n = round(width * max(0.0, min(pct, 100.0)) / 100)
    return "█" * n + "·" * (width - n) + f" {pct:5.1f}%"


def tasks_table(tasks: list[Task], title: str | None = None) -> Table:
    table = Table(title=title, show_lines=False)
    for col in ("SN", "MAC", "STATUS", "STEP", "PROGRESS", "MESSAGE"):
        table.add_column(col, no_wrap=col != "MESSAGE")
    colors = {"completed": "green", "failed": "red", "installing": "cyan", "approved": "yellow"}
    for t in sorted(tasks, key=lambda t: t.sn):
        msg = t.error or t.progress.message or ""
        st = t.status.value
        table.add_row(
            t.sn, t.mac, f"[{colors.get(st, 'white')}]{st}[/]", _step_of(t),
            _bar(t.progress.percent), msg[:80],
        )  # fmt: skip
    return table


async def _list(args: argparse.Namespace) -> int:
    cfg = config_of(args)
    store = await open_store(cfg)
    try:
        tasks, invalid = await load_tasks(store, Keys(cfg.idc))
    finally:
        await store.close()
    chosen = [t for t in tasks.values() if not args.status or t.status.value == args.status]
    if args.json:
        print(json.dumps([_summary(t) for t in chosen], indent=2))
    else:
        Console().print(tasks_table(chosen))
        for sn, why in invalid.items():
            print(f"invalid task {sn}: {why}", file=sys.stderr)
    return 0


def _summary(t: Task) -> dict[str, Any]:
    return {
        "sn": t.sn,
        "mac": t.mac,
        "status": t.status.value,
        "step": _step_of(t),
        "progress": t.progress.percent,
        "message": t.progress.message,
        "error": t.error,
    }


async def _show(args: argparse.Namespace) -> int:
    from regional_client.api.admin import redacted

    cfg = config_of(args)
    store = await open_store(cfg)
    keys = Keys(cfg.idc)
    try:
        kv = await store.get(keys.task(args.sn))
        if kv is None:
            raise NotFound(f"no task for serial {args.sn}")
        task = Task.model_validate(kv.value)
        audit = await read_audit(store, keys, args.sn) if args.audit else []
    finally:
        await store.close()
    data = redacted(task)
    if args.json:
        if args.audit:
            data["audit"] = audit
        print(json.dumps(data, indent=2))
        return 0
    con = Console()
    con.print(tasks_table([task]))
    for s in task.steps:
        con.print(
            f"  step {s.name:<8} {s.status:<8} attempts={s.attempts} "
            f"{s.started_at or ''} → {s.finished_at or ''} {s.error or ''}"
        )
    for h in task.history:
        con.print(f"  {h.get('at')} {h.get('from')} → {h.get('to')} by {h.get('by')} "
                  f"{h.get('reason', '')}")  # fmt: skip
    for rec in audit:
        con.print(f"  audit {rec.get('time')} {rec.get('actor')} {rec.get('action')} "
                  f"{rec.get('target')} {rec.get('result')}")  # fmt: skip
    return 0


async def read_audit(store: EtcdStore, keys: Keys, sn: str) -> list[dict[str, Any]]:
    from regional_client.tasks.audit_trail import AuditTrail

    return await AuditTrail(store, keys).read(sn)


async def _watch(args: argparse.Namespace) -> int:
    cfg = config_of(args)
    store = await open_store(cfg)
    keys = Keys(cfg.idc)
    wanted = set(args.sn)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.timeout if args.timeout else None
    try:
        tasks, _ = await load_tasks(store, keys)
        rev = await store.revision()

        def visible() -> list[Task]:
            return [t for sn, t in tasks.items() if not wanted or sn in wanted]

        def settled() -> bool:
            v = visible()
            return (
                bool(v)
                and all(t.status in FINAL for t in v)
                and (not wanted or wanted <= set(tasks))
            )

        async def follow(render: Any) -> None:
            # closed here, not whenever the generator is collected: its watch thread is done
            # with gRPC before the store closes and the process exits
            async with contextlib.aclosing(store.watch_prefix(keys.machines_prefix, rev + 1)) as w:
                async for ev in w:
                    sn = keys.sn_from_task_key(ev.key)
                    if sn is None:
                        continue
                    if ev.kind == "delete":
                        tasks.pop(sn, None)
                    elif ev.kind == "put":
                        try:
                            tasks[sn] = Task.model_validate(ev.value)
                        except (pydantic.ValidationError, TypeError):
                            continue
                    render(sn)
                    if settled():
                        return

        if args.json:

            def emit(sn: str) -> None:
                t = tasks.get(sn)
                print(json.dumps(_summary(t) if t else {"sn": sn, "deleted": True}), flush=True)

            for t in visible():
                emit(t.sn)
            if not settled():
                await asyncio.wait_for(follow(emit), _remaining(loop, deadline))
        else:
            with Live(tasks_table(visible()), refresh_per_second=4) as live:
                if not settled():
                    await asyncio.wait_for(
                        follow(lambda sn: live.update(tasks_table(visible()))),
                        _remaining(loop, deadline),
                    )
    except TimeoutError:
        print("regional-client: watch timed out before the tasks settled", file=sys.stderr)
        return 1
    finally:
        await store.close()
    return 0 if all(t.status == Status.COMPLETED for t in visible()) else 1


def _remaining(loop: asyncio.AbstractEventLoop, deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - loop.time())


def _out(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data) if getattr(args, "json", False) else text)
