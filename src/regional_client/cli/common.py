"""Helpers shared by CLI commands: config loading and an etcd connection from it."""

from __future__ import annotations

import argparse
from pathlib import Path

from regional_client.config import Config, load_config
from regional_client.config.secretbox import SecretBox
from regional_client.core.errors import StoreError
from regional_client.store.embedded import read_endpoint
from regional_client.store.etcd import EtcdStore


def add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", help="the regional client's YAML config (same file as run)")


def config_of(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None))


async def open_store(cfg: Config) -> EtcdStore:
    """Connect to the configured etcd, or to the embedded one a running instance started."""
    endpoints = list(cfg.etcd.endpoints)
    if not endpoints:
        ep = read_endpoint(Path(cfg.state_dir))
        if ep is None:
            raise StoreError(
                f"no etcd.endpoints configured and no embedded etcd running for state dir "
                f"{cfg.state_dir} (start 'regional-client run' with the same config first)"
            )
        endpoints = [ep]
    box = SecretBox.from_config(cfg.secrets, Path(cfg.state_dir))
    store = EtcdStore.from_config(cfg.etcd, endpoints, box.decrypt, Path(cfg.state_dir))
    await store.connect()
    return store
