"""Fixtures of the cluster tests: a started 3-node JetStream cluster (``nats_cluster``) and a
single JetStream server (``nats_server``), one of each per test module, on loopback ports,
stopped at the end of the module whatever happened (``bench/natsd.py``); and ``nodes``, the
gateway nodes and simulators a test starts over ``nats_cluster`` (``tests.cluster.nodes``,
the default lease time), all stopped after it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.natsd import NatsCluster
from tests.cluster.nodes import Nodes


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


@pytest.fixture
def nodes(request: pytest.FixtureRequest, nats_cluster: NatsCluster, tmp_path: Path
          ) -> Iterator[Nodes]:
    """A test module's ``NODE_OPTIONS`` (``Nodes`` keywords: a shorter lease or log) apply."""
    options = getattr(request.module, "NODE_OPTIONS", {})
    started = Nodes(nats_cluster, tmp_path, **options)
    try:
        yield started
    finally:
        started.close()
