"""Shared fixtures: a real etcd for the whole test session, a connected store, unique IDCs."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from regional_client.store.etcd import EtcdStore
from regional_client.store.keys import Keys
from tests.helpers.etcd import EtcdProcess

_counter = itertools.count()


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdProcess]:
    """One real etcd for the session (tests isolate themselves with a unique IDC)."""
    proc = EtcdProcess(tmp_path_factory.mktemp("etcd") / "data")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def idc() -> str:
    return f"t{os.getpid()}x{next(_counter)}"


@pytest.fixture
def keys(idc: str) -> Keys:
    return Keys(idc)


@pytest.fixture
async def etcd_store(etcd_server: EtcdProcess) -> AsyncIterator[EtcdStore]:
    store = EtcdStore([etcd_server.endpoint], dial_timeout=3, request_timeout=5)
    await store.connect()
    yield store
    await store.close()


@pytest.fixture
def own_etcd(tmp_path: Path) -> Iterator[EtcdProcess]:
    """A private etcd a test may kill and restart."""
    proc = EtcdProcess(tmp_path / "etcd-data")
    proc.start()
    yield proc
    proc.stop()
