"""Spark configuration every Tormenta job runs with (no Airflow or pyspark import here)."""

from __future__ import annotations

import os
from pathlib import Path

LOG4J2_FILE = Path(__file__).resolve().parent.parent / "spark_jobs" / "log4j2.properties"

# Loopback only, no web UI (it would listen on every interface), small shuffles for few cores.
DEFAULT_CONF: dict[str, str] = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{LOG4J2_FILE}",
    # In local mode the driver's heap is the executors' too. Spark's 1g default starves the sorts
    # of a batch window (spills, and GC pauses long enough to time out HBase client calls).
    "spark.driver.memory": os.environ.get("TORMENTA_SPARK_DRIVER_MEMORY", "3g"),
    # A micro-batch generates ~100 classes; with Spark's default cache of 100 compiled classes
    # every batch compiled them all again (~0.2 s of driver CPU per batch).
    "spark.sql.codegen.cache.maxEntries": "2000",
}


def spark_submit_command(job: str, job_args: list[str], master: str = "local[2]",
                         conf: dict[str, str] | None = None) -> list[str]:  # fmt: skip
    """``spark-submit`` argument list for ``spark_jobs/<job>.py`` outside Airflow (tests, bench, CLI).

    Inside Airflow the same defaults come through ``SparkJobOperator``.
    """
    import sys

    from tormenta import jvm

    cmd = [str(Path(sys.executable).parent / "spark-submit"), "--master", master]
    for key, value in {**DEFAULT_CONF, **jvm.spark_classpath_conf(), **(conf or {})}.items():
        cmd += ["--conf", f"{key}={value}"]
    cmd += ["--jars", ",".join(str(p) for p in jvm.spark_jar_paths())]
    cmd += [str(LOG4J2_FILE.parent / f"{job}.py"), *job_args]
    return cmd
