"""``regional-client config check FILE``: validate a config file and show what it means."""

from __future__ import annotations

import argparse
import json
import sys

import yaml

from regional_client.config import load_config
from regional_client.config.secretbox import check_clear_passwords, clear_passwords


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="configuration tools")
    s = p.add_subparsers(dest="config_command", metavar="ACTION")
    s.required = True
    c = s.add_parser("check", help="validate a config file (exit 1 with the problem if invalid)")
    c.add_argument("file")
    c.add_argument("--show", action="store_true", help="print the effective config (as YAML)")
    c.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    cfg = load_config(args.file)
    if args.show:
        data = json.loads(cfg.model_dump_json())
        for section in ("etcd", "switch", "bmc"):
            sec = data.get(section) or {}
            for k in ("password", "default_password"):
                if sec.get(k):
                    sec[k] = "***"
        print(yaml.safe_dump(data, sort_keys=False), end="")
    else:
        check_clear_passwords(cfg, clear_passwords(cfg), lambda t: print(f"warning: {t}",
                                                                          file=sys.stderr))
        mode = "embedded etcd" if cfg.etcd.is_embedded else ",".join(cfg.etcd.endpoints)
        print(f"{args.file}: OK (idc={cfg.idc}, api_port={cfg.api_port}, etcd={mode})")
    return 0
