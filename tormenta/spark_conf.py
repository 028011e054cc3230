"""Spark configuration every Tormenta job runs with (no Airflow or pyspark import here)."""

from __future__ import annotations

# Loopback only, no web UI (it would listen on every interface), small shuffles for few cores.
DEFAULT_CONF: dict[str, str] = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.session.timeZone": "UTC",
}
