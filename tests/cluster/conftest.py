"""The cluster suite (`make test-cluster`): the fleet on the local cluster, three Kafka nodes and Redis
with a replica and Sentinels (devtools/cluster.py), with nodes killed under it.

Skipped unless CW_CLUSTER_TESTS=1 (`make test-cluster` sets it): it starts the local cluster if it
is not running (and stops it afterwards unless CW_KEEP_CLUSTER=1), and kills and restarts its nodes.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from devtools.cluster import LocalCluster
from devtools.namespaces import delete_namespace
from shared.settings import Settings


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/cluster is skipped unless CW_CLUSTER_TESTS=1 (`make test-cluster`)."""
    if os.environ.get("CW_CLUSTER_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="the cluster suite: run `make test-cluster`")
    here = Path(__file__).resolve().parent
    for item in items:
        if Path(str(item.fspath)).resolve().is_relative_to(here):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    local = LocalCluster(Settings(), say=lambda line: print(f"[cluster] {line}"))
    was_running = local.running()
    local.up()
    yield local
    if not was_running and not os.environ.get("CW_KEEP_CLUSTER"):
        local.down()


@pytest.fixture
async def settings(cluster: LocalCluster, namespace: str) -> AsyncIterator[Settings]:
    """The cluster's settings in a namespace of this test's own (its topics and keys go afterwards)."""
    made = cluster.settings.model_copy(update={"topic_namespace": namespace})
    yield made
    await delete_namespace(made)
