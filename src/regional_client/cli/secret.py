"""``regional-client secret genkey|encrypt``: make a key, encrypt a BMC/switch password.

The secret to encrypt is read from stdin (or a no-echo prompt on a terminal), never from the
command line, so it stays out of shell history and ``/proc/<pid>/cmdline``. The key comes from
``--key-file``, else the config's ``secrets`` section (``--config``), else the environment
variable ``REGIONAL_CLIENT_SECRET_KEY``. Output: ``enc:...``, ready for a task's
``bmc.password`` or the config's ``bmc.default_password``.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from regional_client.config import load_config
from regional_client.config.secretbox import SecretBox, generate_key, write_key_file
from regional_client.config.secrets import SecretsConfig
from regional_client.core.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("secret", help="encrypt secrets for etcd and the config (enc:...)")
    s = p.add_subparsers(dest="secret_command", metavar="ACTION")
    s.required = True
    g = s.add_parser("genkey", help="make a new secrets key")
    g.add_argument("--out", type=Path, help="write it to this new file (mode 0600)")
    g.set_defaults(func=_genkey)
    e = s.add_parser("encrypt", help="encrypt a secret read from stdin; prints enc:...")
    e.add_argument("--key-file", type=Path, help="key file (default: from --config or env)")
    e.add_argument("--config", help="config file whose secrets section names the key")
    e.set_defaults(func=_encrypt)


def _genkey(args: argparse.Namespace) -> int:
    key = generate_key()
    if args.out is None:
        print(key)
        return 0
    try:
        write_key_file(args.out, key)
    except FileExistsError:
        raise ConfigError(f"{args.out} exists; not overwriting a key") from None
    except OSError as e:
        raise ConfigError(f"{args.out}: cannot write: {e.strerror or e}") from None
    print(f"key written to {args.out} (mode 0600)", file=sys.stderr)
    return 0


def _box(args: argparse.Namespace) -> SecretBox:
    if args.key_file is not None:
        return SecretBox.from_config(SecretsConfig(key_file=args.key_file))
    if args.config:
        cfg = load_config(args.config)
        return SecretBox.from_config(cfg.secrets, cfg.state_dir)
    return SecretBox.from_config(SecretsConfig())


def _read_secret() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("secret: ")
        if first != getpass.getpass("again: "):
            raise ConfigError("the two entries differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _encrypt(args: argparse.Namespace) -> int:
    box = _box(args)
    if not box.has_key:
        raise ConfigError(
            "no secrets key: give --key-file, a --config with secrets.key_file, or set "
            "REGIONAL_CLIENT_SECRET_KEY (make one with: regional-client secret genkey)"
        )
    secret = _read_secret()
    if not secret:
        raise ConfigError("empty secret on stdin")
    print(box.encrypt(secret))
    return 0
