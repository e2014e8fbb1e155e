"""The cluster suite (`make test-cluster`): the fleet on the local cluster, three Kafka nodes and Redis
with a replica and Sentinels (devtools/cluster.py), with nodes killed under it.

Skipped unless CW_CLUSTER_TESTS=1 (`make test-cluster` sets it): it starts the local cluster if it
is not running (and stops it afterwards unless CW_KEEP_CLUSTER=1), and kills and restarts its nodes.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from devtools.cluster import LocalCluster
from devtools.namespaces import delete_namespace
from shared.settings import Settings

pytestmark = pytest.mark.skipif(os.environ.get("CW_CLUSTER_TESTS") != "1", reason="the cluster suite: run `make test-cluster`")


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    local = LocalCluster(Settings(), say=lambda line: print(f"[cluster] {line}"))
    was_running = local.running()
    local.up()
    yield local
    if not was_running and not os.environ.get("CW_KEEP_CLUSTER"):
        local.down()


@pytest.fixture
def settings(cluster: LocalCluster, namespace: str) -> Settings:
    """The cluster's settings in a namespace of this test's own."""
    return cluster.settings.model_copy(update={"topic_namespace": namespace})


@pytest.fixture(autouse=True)
async def _clean_namespace(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    yield
    if "settings" in request.fixturenames:
        await delete_namespace(request.getfixturevalue("settings"))
