"""What every Tormenta DAG shares, in one place: no catch-up, one run at a time, a failure's reason
in the run's note, the ``tormenta`` tag, and the macros its templates use to read connections
(through the providers' hooks, at render time: parsing a DAG file imports no client library)."""

from __future__ import annotations

from typing import Any

import pendulum

from tormenta import alerts
from tormenta.contracts import query_name

START = pendulum.datetime(2026, 1, 1, tz="UTC")


def kafka_bootstrap(conn_id: str = "kafka_default") -> str:
    from tormenta.providers.kafka import bootstrap_servers

    return bootstrap_servers(conn_id)


def _hbase(conn_id: str):
    from tormenta.providers.hbase import HBaseHook

    return HBaseHook(conn_id).endpoint()


def hbase_host(conn_id: str = "hbase_default") -> str:
    return _hbase(conn_id).host


def hbase_port(conn_id: str = "hbase_default") -> int:
    return _hbase(conn_id).port


def hbase_zookeeper(conn_id: str = "hbase_default") -> str:
    return _hbase(conn_id).zookeeper_quorum


def topics(namespace: str) -> str:
    """The namespace's event topics, comma-separated (the batch job's ``--topics``)."""
    from tormenta.contracts import topics_for

    return ",".join(topics_for(namespace))


def realtime_task_slots() -> int:
    """Task slots a real-time query needs: one per partition of the topics it reads (the kinds
    with a real-time rule), each a task that runs for the whole batch."""
    from tormenta.contracts import KINDS, TOPIC_PARTITIONS

    return TOPIC_PARTITIONS * sum(1 for k in KINDS.values() if k.realtime)


MACROS = {f.__name__: f for f in (kafka_bootstrap, hbase_host, hbase_port, hbase_zookeeper, topics, query_name,
                                  realtime_task_slots)}  # fmt: skip


def dag_args(dag_id: str, doc: str | None, tag: str, schedule: str | None = None,
             params: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:  # fmt: skip
    """``@dag(**dag_args(...))``: the DAG's own id, docs, tag, schedule and Params, the rest shared."""
    return {
        "dag_id": dag_id, "schedule": schedule, "start_date": START, "catchup": False, "max_active_runs": 1,
        "default_args": {"on_failure_callback": alerts.note_failure},  # the reason goes into the run's note
        "doc_md": doc, "user_defined_macros": MACROS, "tags": ["tormenta", tag], "params": params or {}, **extra,
    }  # fmt: skip
