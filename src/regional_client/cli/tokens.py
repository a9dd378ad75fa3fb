"""``regional-client token new|hash``: admin tokens are configured by their SHA-256 only."""

from __future__ import annotations

import argparse
import getpass
import sys

from regional_client.api.auth import hash_token
from regional_client.core.tokens import new_token


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("token", help="admin token tools")
    s = p.add_subparsers(dest="token_command", metavar="ACTION")
    s.required = True
    n = s.add_parser("new", help="make a random admin token; prints it and its config entry")
    n.add_argument("--name", default="ops", help="who holds it (the audit actor)")
    n.set_defaults(func=_new)
    h = s.add_parser("hash", help="SHA-256 of a token read from stdin (never from argv)")
    h.set_defaults(func=_hash)


def _new(args: argparse.Namespace) -> int:
    tok = new_token()
    print(f"token: {tok}")
    print("config (api.admin_tokens):")
    print(f"  - name: {args.name}\n    sha256: {hash_token(tok)}")
    return 0


def _hash(args: argparse.Namespace) -> int:
    tok = getpass.getpass("token: ") if sys.stdin.isatty() else sys.stdin.readline()
    tok = tok.strip()
    if not tok:
        print("regional-client: error: empty token", file=sys.stderr)
        return 1
    print(hash_token(tok))
    return 0
