"""Fixtures of the cluster tests: a started 3-node JetStream cluster (``nats_cluster``) and a
single JetStream server (``nats_server``), one of each per test module, on loopback ports,
stopped at the end of the module whatever happened (``bench/natsd.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.natsd import NatsCluster


def _started(tmp_path_factory: pytest.TempPathFactory, size: int) -> Iterator[NatsCluster]:
    cluster = NatsCluster(tmp_path_factory.mktemp("nats"), size=size)
    try:
        cluster.start()  # stops every node it started when it fails
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """Three nodes with JetStream, a meta leader elected."""
    yield from _started(tmp_path_factory, 3)


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """One JetStream server (no cluster block)."""
    yield from _started(tmp_path_factory, 1)
