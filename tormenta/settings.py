"""Deployment-wide settings: where things live and where services listen.

Every value comes from an environment variable with a safe local default (loopback only).
Run-time knobs belong to DAG Params, endpoints of a real cluster to Airflow connections;
this module only describes the embedded local stack and the folders it uses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _env_int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not an integer") from exc
    if not 0 < value < 65536 and name.endswith("_PORT"):
        raise ValueError(f"{name}={value} is not a TCP port")
    return value


@dataclass(frozen=True)
class Settings:
    """Paths and endpoints of the local stack. Build with :func:`load`."""

    home: Path  # data, logs, pid files, generated config and secrets
    jars_dir: Path  # Maven-resolved JVM components, one sub-folder per component
    bind_host: str
    kafka_port: int
    kafka_controller_port: int
    zookeeper_port: int
    hbase_master_port: int
    hbase_regionserver_port: int
    thrift_port: int
    airflow_port: int
    kafka_heap: str
    hbase_heap: str
    thrift_heap: str
    # Where streaming checkpoints and the batch archetype's landing and warehouse folders live: a
    # local folder, or a URI of a shared file system (hdfs://...) once drivers run on several hosts.
    checkpoint_root: str
    landing_root: str
    warehouse_root: str
    # Replication and min.insync.replicas of the topics the platform creates; -1 / 0: the brokers'
    # defaults (KIP-464), which is what a single local broker needs.
    topic_replication: int
    topic_min_isr: int
    # Where executors reach the Spark driver, and where the geo endpoints listen (the phones' target).
    spark_driver_host: str
    geo_host: str

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def conf_dir(self) -> Path:
        return self.home / "conf"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.bind_host}:{self.kafka_port}"

    @property
    def airflow_url(self) -> str:
        return f"http://{self.bind_host}:{self.airflow_port}"


def is_uri(path: str) -> bool:
    """``hdfs://nn:8020/x`` or ``file:///x``, as opposed to a plain local path."""
    return "://" in str(path)


def join(root: str | Path, *parts: str) -> str:
    """``root/part/...`` for a local folder or a URI (``Path`` would fold a URI's ``//``)."""
    if is_uri(str(root)):
        return "/".join([str(root).rstrip("/"), *(p.strip("/") for p in parts)])
    return str(Path(root).joinpath(*parts))


@cache
def load() -> Settings:
    """Read settings from the environment (cached: the environment of a process is fixed)."""
    home = Path(_env("TORMENTA_HOME", str(REPO_ROOT / "var"))).resolve()
    return Settings(
        home=home,
        jars_dir=Path(_env("TORMENTA_JARS_DIR", str(REPO_ROOT / ".cache" / "jars"))).resolve(),
        bind_host=_env("TORMENTA_BIND_HOST", "127.0.0.1"),
        kafka_port=_env_int("TORMENTA_KAFKA_PORT", 9092),
        kafka_controller_port=_env_int("TORMENTA_KAFKA_CONTROLLER_PORT", 9093),
        zookeeper_port=_env_int("TORMENTA_ZOOKEEPER_PORT", 2181),
        hbase_master_port=_env_int("TORMENTA_HBASE_MASTER_PORT", 16000),
        hbase_regionserver_port=_env_int("TORMENTA_HBASE_REGIONSERVER_PORT", 16020),
        thrift_port=_env_int("TORMENTA_HBASE_THRIFT_PORT", 9090),
        airflow_port=_env_int("TORMENTA_AIRFLOW_PORT", 8080),
        kafka_heap=_env("TORMENTA_KAFKA_HEAP", "1G"),
        # Master + region server + ZooKeeper in one JVM: 1 GiB ran out of heap (memstores of a few
        # hundred small regions once tests and benchmarks had created their namespaces).
        hbase_heap=_env("TORMENTA_HBASE_HEAP", "2G"),
        thrift_heap=_env("TORMENTA_THRIFT_HEAP", "512M"),
        checkpoint_root=_root("TORMENTA_CHECKPOINT_ROOT", home / "checkpoints"),
        landing_root=_root("TORMENTA_LANDING_ROOT", home / "landing"),
        warehouse_root=_root("TORMENTA_WAREHOUSE_ROOT", home / "warehouse"),
        topic_replication=_env_int("TORMENTA_TOPIC_REPLICATION", -1),
        topic_min_isr=_env_int("TORMENTA_TOPIC_MIN_ISR", 0),
        spark_driver_host=_env("TORMENTA_SPARK_DRIVER_HOST", "127.0.0.1"),
        geo_host=_env("TORMENTA_GEO_HOST", "127.0.0.1"),
    )


def _root(name: str, default: Path) -> str:
    value = _env(name, str(default))
    return value.rstrip("/") if is_uri(value) else str(Path(value).resolve())
