"""What a namespace needs before anything runs in it, in one place: its topics (partitions,
replication and retention from the deployment's settings, applied to topics that exist too), its
HBase tables and the reference rows the enrichment reads. The micro-batch DAG's ``prepare`` task
and ``tormenta prepare`` both call :func:`prepare`. Retry: safe, every step is idempotent."""

from __future__ import annotations

from dataclasses import dataclass

from tormenta.contracts import DEFAULT_NAMESPACE, check_namespace
from tormenta.kafka import contract_topics, ensure_topics
from tormenta.reference import seed

DEFAULT_DEVICES = 2000


@dataclass(frozen=True)
class Prepared:
    namespace: str
    topics: dict[str, bool]  # topic -> created now (False: it existed; its config was applied)
    reference_rows: dict[str, int]  # table -> rows written

    def lines(self) -> list[str]:
        out = [f"topic {name:<36} {'created' if new else 'exists'}" for name, new in self.topics.items()]
        return out + [f"table {table:<36} {rows:>6} reference rows" for table, rows in self.reference_rows.items()]


def prepare(kafka, hbase_conn, namespace: str = DEFAULT_NAMESPACE, devices: int = DEFAULT_DEVICES) -> Prepared:
    """``kafka``: the bootstrap servers, or the Kafka provider hook's admin client (the DAG's)."""
    check_namespace(namespace)
    specs = contract_topics(namespace)
    created = set(ensure_topics(kafka, specs, apply_config=True))
    rows = seed(hbase_conn, device_count=devices, namespace=namespace)
    return Prepared(namespace, {s.name: s.name in created for s in specs}, rows)
