"""Airflow hook for HBase over Thrift (happybase), on connection ``hbase_default``."""

from __future__ import annotations

from airflow.sdk import BaseHook

from tormenta.hbase import HBaseEndpoint


class HBaseHook(BaseHook):
    """Reads the HBase Thrift endpoint from an Airflow connection.

    Connection: host and port of the Thrift server; extras ``transport`` (buffered|framed),
    ``protocol`` (binary|compact), ``timeout_ms``, and for the jobs' native writer
    ``zookeeper_quorum`` (``host:port,...``; default: the Thrift host on port 2181) and
    ``znode_parent`` (default ``/hbase``).
    """

    conn_name_attr = "hbase_conn_id"
    default_conn_name = "hbase_default"
    conn_type = "generic"
    hook_name = "HBase (Thrift)"

    def __init__(self, hbase_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.hbase_conn_id = hbase_conn_id

    def endpoint(self) -> HBaseEndpoint:
        return self.endpoint_from(self.get_connection(self.hbase_conn_id))

    @staticmethod
    def endpoint_from(conn) -> HBaseEndpoint:
        """An Airflow connection (task SDK's or the core model, e.g. in the API server) -> endpoint."""
        extra = conn.extra_dejson
        return HBaseEndpoint(
            host=conn.host or "127.0.0.1",
            port=int(conn.port or 9090),
            transport=extra.get("transport", "buffered"),
            protocol=extra.get("protocol", "binary"),
            timeout_ms=int(extra.get("timeout_ms", 30000)),
            zookeeper_quorum=extra.get("zookeeper_quorum") or f"{conn.host or '127.0.0.1'}:2181",
            znode_parent=extra.get("znode_parent", "/hbase"),
        )

    def get_conn(self):
        """A happybase connection; the caller closes it (``session`` does that for a ``with`` block)."""
        return self.endpoint().connect()

    def session(self):
        """``with HBaseHook().session() as conn``: a happybase connection, closed on the way out."""
        return self.endpoint().session()
