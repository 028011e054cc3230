"""The docker/ deployment's configuration, read as files and rendered by its entry point (no services).

The running cluster is checked by tests/cluster; these catch a bad edit before any build.
"""

from __future__ import annotations

import importlib.util
import json

import pytest
import yaml

from tormenta.settings import REPO_ROOT

pytestmark = pytest.mark.unit

DOCKER = REPO_ROOT / "docker"


def compose() -> dict:
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


def entrypoint(monkeypatch, tmp_path):
    """docker/entrypoint.py as a module, with made-up secrets and cluster.env in its environment."""
    from tormenta.stack.cluster import cluster_env

    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name, value in {"fernet.key": "F" * 44, "jwt.secret": "J" * 64, "api-secret.key": "A" * 43,
                        "postgres.password": "P" * 43}.items():  # fmt: skip
        (secrets / name).write_text(value + "\n")
    for key, value in cluster_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TORMENTA_SECRETS", str(secrets))
    monkeypatch.setenv("TORMENTA_APP", str(REPO_ROOT))
    monkeypatch.setenv("TORMENTA_DATA", str(tmp_path / "data"))
    spec = importlib.util.spec_from_file_location("tormenta_entrypoint", DOCKER / "entrypoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_service_uses_the_host_network_and_publishes_no_port():
    services = compose()["services"]
    assert len(services) == 20
    for name, svc in services.items():
        assert svc["network_mode"] == "host", name  # no bridge network (../shared/DOCKER.md)
        assert "ports" not in svc and "networks" not in svc, name
        assert svc["container_name"] == f"tormenta-{name}"
        mounts = svc["volumes"]
        assert "${TORMENTA_CLUSTER_SECRETS:?}:/run/tormenta-secrets:ro" in mounts, name  # read-only
        if name != "airflow-init":
            assert "entrypoint.py" in " ".join(svc["healthcheck"]["test"]), name


def test_roles_have_the_shape_of_a_real_cluster():
    services = compose()["services"]
    roles = [svc["command"][0] for svc in services.values()]
    assert roles.count("kafka") == 3 and roles.count("regionserver") == 2 and roles.count("datanode") == 2
    assert roles.count("spark-worker") == 2 and roles.count("zookeeper") == 1 and roles.count("postgres") == 1
    kafka_ids = sorted(svc["environment"]["KAFKA_NODE_ID"] for svc in services.values() if svc["command"] == ["kafka"])
    assert kafka_ids == ["1", "2", "3"]
    # health, not sleeps, orders the start: region servers after the master, the master after HDFS
    assert services["hbase-master"]["depends_on"]["datanode1"]["condition"] == "service_healthy"
    assert services["airflow-api-server"]["depends_on"]["airflow-init"]["condition"] == (
        "service_completed_successfully")


def test_no_secret_in_the_image_or_the_compose_files():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE" in dockerfile and "FROM ${BASE_IMAGE}" in dockerfile
    assert "secrets" not in dockerfile.lower().replace("tormenta-secrets", "")
    text = (DOCKER / "docker-compose.yml").read_text() + (DOCKER / "cluster.env").read_text()
    for word in ("FERNET", "JWT_SECRET", "SECRET_KEY", "PASSWORD"):
        assert word not in text.upper(), word


def test_kafka_nodes_are_durable_and_bind_loopback(monkeypatch, tmp_path):
    ep = entrypoint(monkeypatch, tmp_path)
    monkeypatch.setenv("KAFKA_NODE_ID", "2")
    conf = ep.kafka_config()
    assert conf["node.id"] == 2
    assert conf["default.replication.factor"] == 3 and conf["min.insync.replicas"] == 2
    assert conf["unclean.leader.election.enable"] == "false"
    assert conf["offsets.topic.replication.factor"] == 3 and conf["transaction.state.log.min.isr"] == 2
    assert conf["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert conf["controller.quorum.voters"].count("@127.0.0.1:") == 3


def test_airflow_uses_postgres_the_fab_auth_manager_and_generated_secrets(monkeypatch, tmp_path):
    ep = entrypoint(monkeypatch, tmp_path)
    env = ep.airflow_env()
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("fab_auth_manager.FabAuthManager")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__FERNET_KEY"] == "F" * 44
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == "J" * 64 and env["AIRFLOW__API__SECRET_KEY"] == "A" * 43
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:" + "P" * 43)
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1" and env["AIRFLOW__API__EXPOSE_CONFIG"] == "False"
    assert "SIMPLE_AUTH_MANAGER_USERS" not in json.dumps(env)


def test_hdfs_and_hbase_config_keep_the_wal_durable(monkeypatch, tmp_path):
    ep = entrypoint(monkeypatch, tmp_path)
    ep.hbase_conf(tmp_path / "hbase")
    site = (tmp_path / "hbase" / "hbase-site.xml").read_text()
    assert "<name>hbase.rootdir</name><value>hdfs://127.0.0.1:18020/hbase</value>" in site
    assert "hbase.unsafe.stream.capability.enforce" not in site  # the WAL's capability check stays on
    assert "<name>hbase.cluster.distributed</name><value>true</value>" in site
    hdfs = (tmp_path / "hbase" / "hdfs-site.xml").read_text()
    assert "<name>dfs.replication</name><value>2</value>" in hdfs


def test_cluster_connections_point_the_same_dags_at_the_cluster(monkeypatch, tmp_path):
    from tormenta.stack import cluster

    monkeypatch.setenv("TORMENTA_HOME", str(tmp_path))
    from tormenta import settings

    settings.load.cache_clear()
    try:
        folder = cluster.ensure_secrets()
        again = {p.name: p.read_text() for p in folder.iterdir() if p.name not in ("connections.json", "pools.json")}
        cluster.ensure_secrets()  # generated once: a second up keeps every secret
        assert {p.name: p.read_text() for p in folder.iterdir() if p.name in again} == again
        assert all(p.stat().st_mode & 0o077 == 0 for p in folder.iterdir())
        conns = json.loads((folder / "connections.json").read_text())
        e = cluster.Endpoints.load()
        assert conns["spark_default"]["host"] == e.spark_master == "spark://127.0.0.1:17077"
        assert json.loads(conns["kafka_default"]["extra"])["bootstrap.servers"].count(",") == 2
        assert json.loads(conns["hbase_default"]["extra"])["zookeeper_quorum"] == e.zookeeper
        pools = json.loads((folder / "pools.json").read_text())
        assert next(iter(pools.values()))["slots"] == 3  # 4 Spark cores of the workers minus the reserve
    finally:
        settings.load.cache_clear()


def test_init_steps_are_retried_with_the_reason_then_fail_at_the_deadline(monkeypatch, tmp_path, capsys):
    ep = entrypoint(monkeypatch, tmp_path)
    monkeypatch.setattr(ep.time, "sleep", lambda s: None)
    tries = []

    def flaky():
        tries.append(1)
        if len(tries) < 3:
            raise RuntimeError("INVALID_REPLICATION_FACTOR")
        return ["t"]

    assert ep.retry("Kafka topics", flaky, timeout=60) == ["t"]
    assert len(tries) == 3
    assert capsys.readouterr().out.count("Kafka topics: RuntimeError: INVALID_REPLICATION_FACTOR") == 2

    def broken():
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError):
        ep.retry("PostgreSQL", broken, timeout=0)


def test_a_failed_airflow_command_ends_the_init_with_its_output(monkeypatch, tmp_path):
    ep = entrypoint(monkeypatch, tmp_path)
    monkeypatch.setattr(ep, "VENV_BIN", tmp_path)
    (tmp_path / "airflow").write_text("#!/bin/sh\necho \"no such role: $6\" >&2\nexit 3\n")
    (tmp_path / "airflow").chmod(0o755)
    monkeypatch.setattr(ep, "airflow_env", lambda: {})
    with pytest.raises(SystemExit, match=r"airflow users create exited 3:\nno such role: Admin"):
        ep.airflow("users", "create", "--username", "admin", "--role", "Admin")
