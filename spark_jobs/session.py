"""SparkSession construction shared by the jobs and the tests."""

from __future__ import annotations

import os


def get_session(app_name: str, master: str | None = None, extra_conf: dict[str, str] | None = None):
    """Return the active session (spark-submit) or build a local one with the connector jars.

    Under spark-submit the jars are already on the classpath (``--jars``). When a job or a test
    runs in a plain Python process, ``spark.jars`` must be set before the JVM starts, which is
    what the builder does here.
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName(app_name)
    # spark-submit starts the JVM first and hands its gateway to Python through this variable.
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        from tormenta import jvm
        from tormenta.spark_conf import default_conf

        builder = builder.master(master or "local[*]")
        builder = builder.config("spark.jars", ",".join(str(p) for p in jvm.spark_jar_paths()))
        for key, value in jvm.spark_classpath_conf().items():
            builder = builder.config(key, value)
        for key, value in default_conf().items():
            builder = builder.config(key, value)
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
