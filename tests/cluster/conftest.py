"""Fixtures of the cluster tests: the docker/ cluster (started when it is not up), its Airflow and HBase.

Run with ``make cluster-test`` (all) or ``make cluster-test-ci`` (all but the node kills). The
cluster is left running at the end (``make cluster-down`` removes it).
"""

from __future__ import annotations

import json
import os

import pytest

from tormenta.airflow_api import AirflowClient

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="session")
def cluster():
    from tormenta.stack import cluster as c

    c.ensure_engine()
    states = c.health() if c.image_exists(c.IMAGE) else {}
    if not states or any(v not in ("healthy", "exited(0)") for v in states.values()):
        c.up(build=os.environ.get("TORMENTA_CLUSTER_BUILD", "1") != "0" or not c.image_exists(c.IMAGE))
    return c


@pytest.fixture(scope="session")
def endpoints(cluster):
    return cluster.Endpoints.load()


@pytest.fixture(scope="session")
def admin(cluster, endpoints) -> AirflowClient:
    client = AirflowClient(endpoints.airflow_url, "admin", cluster.passwords()["admin"])
    for dag_id in ("tormenta_smoke", "tormenta_microbatch", "tormenta_microbatch_stop", "tormenta_batch"):
        client.wait_for_dag(dag_id, timeout=300)
        client.set_paused(dag_id, False)  # new DAGs are paused at creation: a triggered run would stay queued
    return client


@pytest.fixture(scope="session")
def hbase_endpoint(endpoints):
    from tormenta.hbase import HBaseEndpoint

    return HBaseEndpoint("127.0.0.1", endpoints.thrift_port, timeout_ms=120_000, zookeeper_quorum=endpoints.zookeeper)


@pytest.fixture(scope="session")
def results():
    """Figures of the run (timings, memory), written to artifacts/cluster.json at the end."""
    from tests.e2e.browser import artifacts_dir

    out: dict = {}
    yield out
    path = artifacts_dir().parent / "cluster.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**old, **out}, indent=2, default=str))
