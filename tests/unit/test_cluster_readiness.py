"""What makes the same DAGs run on a cluster with only settings and connections changed (no services).

Each test fails if its piece of readiness breaks: roots that may be URIs, the driver host from
settings, the jobs' code shipped to executors, durable topics from settings.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest

from tormenta import settings

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("fresh_settings")]


def test_storage_roots_default_to_local_folders_and_may_be_uris(monkeypatch, tmp_path):
    monkeypatch.setenv("TORMENTA_HOME", str(tmp_path))
    for var in ("TORMENTA_CHECKPOINT_ROOT", "TORMENTA_LANDING_ROOT", "TORMENTA_WAREHOUSE_ROOT"):
        monkeypatch.delenv(var, raising=False)
    s = settings.load()
    assert (s.checkpoint_root, s.landing_root) == (str(tmp_path.resolve() / "checkpoints"),
                                                   str(tmp_path.resolve() / "landing"))  # fmt: skip
    settings.load.cache_clear()
    monkeypatch.setenv("TORMENTA_CHECKPOINT_ROOT", "hdfs://nn:8020/t/checkpoints/")
    s = settings.load()
    assert s.checkpoint_root == "hdfs://nn:8020/t/checkpoints"
    assert settings.join(s.checkpoint_root, "q", "v1") == "hdfs://nn:8020/t/checkpoints/q/v1"
    assert settings.join("/a/b", "q", "v1") == "/a/b/q/v1"


def test_streaming_checkpoint_and_batch_folders_keep_a_uri_intact():
    from spark_jobs.streaming import checkpoint_dir
    from tormenta import batch

    assert checkpoint_dir("hdfs://nn:8020/c", "social", 3) == "hdfs://nn:8020/c/social/v3"
    w = batch.Window(0, 3_600_000)
    p = batch.paths(settings.REPO_ROOT / "var", w, "manual__x", "hdfs://nn:8020/landing", "hdfs://nn:8020/wh")
    assert p["raw_dir"] == f"hdfs://nn:8020/landing/{w.label}/raw"
    assert p["parquet_dir"] == f"hdfs://nn:8020/wh/{w.label}/parquet"
    assert p["source_file"].startswith(str(settings.REPO_ROOT / "var"))  # the task's own file stays local


def test_driver_host_and_extra_spark_conf_come_from_settings(monkeypatch):
    from tormenta.spark_conf import default_conf, extra_conf

    monkeypatch.delenv("TORMENTA_SPARK_DRIVER_HOST", raising=False)
    monkeypatch.delenv("TORMENTA_SPARK_CONF", raising=False)
    assert default_conf()["spark.driver.host"] == "127.0.0.1"  # loopback unless configured
    settings.load.cache_clear()
    monkeypatch.setenv("TORMENTA_SPARK_DRIVER_HOST", "10.0.0.5")
    monkeypatch.setenv("TORMENTA_SPARK_DRIVER_BIND_ADDRESS", "0.0.0.0")
    monkeypatch.setenv("TORMENTA_SPARK_CONF", "spark.shuffle.readHostLocalDisk=false; spark.a.b=c=d")
    conf = default_conf()
    assert conf["spark.driver.host"] == "10.0.0.5" and conf["spark.driver.bindAddress"] == "0.0.0.0"
    assert conf["spark.shuffle.readHostLocalDisk"] == "false" and conf["spark.a.b"] == "c=d"
    with pytest.raises(ValueError, match="not spark"):
        extra_conf("executor.memory=2g")


def test_code_archive_alone_lets_an_executor_import_the_jobs(tmp_path):
    from tormenta.spark_conf import code_archive

    zip_path = code_archive(tmp_path)
    assert code_archive(tmp_path) == zip_path  # same tree, same file
    names = zipfile.ZipFile(zip_path).namelist()
    assert {"tormenta/__init__.py", "spark_jobs/pipeline.py", "ingestors/producer.py"} <= set(names)
    # an interpreter without site-packages and away from the repo: only the zip on its path
    code = ("import sys; sys.path[:0] = [sys.argv[1]]; import tormenta.contracts, spark_jobs.cli_args; "
            "print(tormenta.contracts.__file__)")  # fmt: skip
    out = subprocess.run([sys.executable, "-S", "-c", code, str(zip_path)], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    assert out.startswith(str(zip_path))


def test_spark_submit_ships_the_code_and_sets_cores_on_a_cluster_master(monkeypatch, tmp_path):
    """The operator's spark-submit command on a standalone master: --py-files zip, total executor
    cores from the pool slots, the checkpoint root from settings. On local[*]: no zip, local[<slots>]."""
    pytest.importorskip("airflow.providers.apache.spark")
    from tormenta.providers.spark import SparkJobOperator

    monkeypatch.setenv("TORMENTA_HOME", str(tmp_path))
    monkeypatch.setenv("TORMENTA_CHECKPOINT_ROOT", "hdfs://nn:8020/ck")
    monkeypatch.setenv("TORMENTA_SPARK_DRIVER_HOST", "10.0.0.5")
    monkeypatch.setattr("tormenta.jvm.spark_jar_paths", lambda: [tmp_path / "k.jar"])
    monkeypatch.setattr("tormenta.jvm.spark_classpath_conf", lambda: {})

    def command(master: str, task_slots: str = "") -> list[str]:
        monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": master}))
        op = SparkJobOperator(task_id="t", job="streaming", pool_slots=2, checkpoint_root=True,
                              application_args=["--x", "1"], task_slots=task_slots)  # fmt: skip
        op.prepare({})
        return op._hook._build_spark_submit_command(op.application)

    cmd = command("spark://10.0.0.1:7077")
    assert cmd[cmd.index("--py-files") + 1].endswith(".zip")
    assert cmd[cmd.index("--total-executor-cores") + 1] == "2"
    assert cmd[-2:] == ["--checkpoint-root", "hdfs://nn:8020/ck"]
    assert "spark.driver.host=10.0.0.5" in cmd
    local = command("local[*]")
    assert "--py-files" not in local and local[local.index("--master") + 1] == "local[2]"
    # a real-time query: one slot per Kafka partition of its topics, whatever the pool slots
    from tormenta.providers.dags import realtime_task_slots

    assert realtime_task_slots() == 4  # geo's four partitions: the one kind with a real-time rule
    rt = command("local[*]", task_slots=str(realtime_task_slots()))
    assert rt[rt.index("--master") + 1] == "local[4]" and rt[rt.index("--total-executor-cores") + 1] == "4"
    rt = command("spark://10.0.0.1:7077", task_slots="4")
    assert rt[rt.index("--total-executor-cores") + 1] == "4"


def test_topic_replication_and_min_isr_come_from_settings(monkeypatch):
    from tormenta import kafka, smoke

    monkeypatch.delenv("TORMENTA_TOPIC_REPLICATION", raising=False)
    monkeypatch.delenv("TORMENTA_TOPIC_MIN_ISR", raising=False)
    assert kafka.durability() == (-1, {})  # the brokers' defaults (a single local broker)
    settings.load.cache_clear()
    monkeypatch.setenv("TORMENTA_TOPIC_REPLICATION", "3")
    monkeypatch.setenv("TORMENTA_TOPIC_MIN_ISR", "2")
    assert smoke.topic().replication == 3 and smoke.topic().config == {"min.insync.replicas": "2"}
    specs = kafka.contract_topics("ns")
    assert all(s.replication == 3 and s.config["min.insync.replicas"] == "2" for s in specs)
    assert all("retention.ms" in s.config for s in specs)
    settings.load.cache_clear()
    monkeypatch.setenv("TORMENTA_TOPIC_MIN_ISR", "4")
    with pytest.raises(ValueError, match="MIN_ISR"):
        kafka.durability()


def test_geo_endpoints_and_phones_use_the_configured_host(monkeypatch):
    from tormenta import microbatch

    pytest.importorskip("airflow.sdk")
    monkeypatch.setenv("TORMENTA_GEO_HOST", "10.0.0.7")
    p = {k: v.value for k, v in microbatch.params().items()}
    specs = microbatch.plan({**p, "sources": ["geo"], "geo_endpoints": 2}, cores=2).ingestors
    geo = [s for s in specs if s["name"].startswith("geo-http")]
    phones = next(s for s in specs if s["name"] == "phones")
    assert all(s["argv"][s["argv"].index("--host") + 1] == "10.0.0.7" for s in geo)
    assert phones["argv"][phones["argv"].index("--endpoints") + 1].startswith("http://10.0.0.7:")
