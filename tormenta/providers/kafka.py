"""Kafka for the DAGs and operators, through the Apache Kafka provider's own hook.

:class:`KafkaHook` is the provider's ``KafkaAdminClientHook`` (connection ``kafka_default``, a
``kafka`` connection whose extras are the confluent-kafka config): its admin client is built by the
provider, callbacks and managed-cloud authentication included. What the provider lacks, this
subclass adds: topics with their config (retention, ``min.insync.replicas``), applied to topics
that exist too, and the bootstrap servers for the processes the DAGs start (Spark jobs, ingestors).
"""

from __future__ import annotations

from airflow.providers.apache.kafka.hooks.client import KafkaAdminClientHook

from tormenta.kafka import TopicSpec, ensure_topics


class KafkaHook(KafkaAdminClientHook):
    def bootstrap_servers(self) -> str:
        servers = self.get_connection(self.kafka_config_id).extra_dejson.get("bootstrap.servers")
        if not servers:
            raise ValueError(f"Airflow connection {self.kafka_config_id!r} has no 'bootstrap.servers' in its extras")
        return servers

    def ensure_topics(self, specs: list[TopicSpec], apply_config: bool = False) -> list[str]:
        """:func:`tormenta.kafka.ensure_topics` with the provider's admin client; the names created."""
        return ensure_topics(self.get_conn, specs, apply_config=apply_config)


def bootstrap_servers(kafka_conn_id: str = KafkaHook.default_conn_name) -> str:
    """The connection's bootstrap servers (the DAGs' ``{{ kafka_bootstrap() }}``)."""
    return KafkaHook(kafka_config_id=kafka_conn_id).bootstrap_servers()
