"""``SparkJobOperator``: spark-submit of a job in ``spark_jobs/`` with the platform's defaults."""

from __future__ import annotations

import sys
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from tormenta.settings import REPO_ROOT
from tormenta.spark_conf import DEFAULT_CONF


class SparkJobOperator(SparkSubmitOperator):
    """Run ``spark_jobs/<job>.py`` through ``spark-submit`` on connection ``spark_default``.

    The Kafka connector jars are looked up when the task runs (never while the DAG file is
    parsed). ``spark-submit`` receives an argument list built by the provider, never a shell
    string, so Param values cannot inject shell syntax.
    """

    def __init__(self, *, job: str, conf: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not job.isidentifier():
            raise ValueError(f"job must be a module name in spark_jobs/, got {job!r}")
        kwargs.setdefault("application", str(REPO_ROOT / "spark_jobs" / f"{job}.py"))
        kwargs.setdefault("name", f"tormenta-{job}")
        env = {"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
        env.update(kwargs.pop("env_vars", None) or {})
        super().__init__(conf={**DEFAULT_CONF, **(conf or {})}, env_vars=env, **kwargs)

    def execute(self, context: Any) -> None:
        if not self.jars:
            from tormenta import jvm

            self.jars = ",".join(str(p) for p in jvm.jar_paths("spark"))
        return super().execute(context)
