"""What the processing of one batch (a micro-batch or a batch window) needs to know about it."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame

from tormenta.contracts import DEFAULT_NAMESPACE, batch_qualifier, table_name
from tormenta.hbase import HBaseEndpoint


@dataclass(frozen=True)
class BatchContext:
    """label: qualifier of this batch's aggregate contributions (``s0000000000042``, or a window's
    ``w...``); seq: monotonic across query versions, ``seq + 1`` is the cell timestamp of event
    rows, aggregates and state, so a replay rewrites identical cells."""

    label: str
    seq: int
    endpoint: HBaseEndpoint
    namespace: str = DEFAULT_NAMESPACE

    def t(self, logical: str) -> str:
        """Physical HBase table name of a logical table."""
        return table_name(logical, self.namespace)

    @property
    def ts(self) -> int:
        """Cell timestamp of everything this batch writes that is not dated by its event."""
        return self.seq + 1

    @property
    def contribution_column(self) -> str:
        """``m:<label>``: the column of this batch's contribution to an aggregate row."""
        return batch_qualifier(self.label).decode()

    @property
    def settings(self) -> str:
        return self.endpoint.native_settings()


def mutations(df: DataFrame, table: str, row: str, ts: str | int, cells: dict[str, str], *,
              metric: str = "NULL", event_time: str = "NULL", table_expr: str | None = None) -> DataFrame:  # fmt: skip
    """One mutation per row of ``df``: ``cells`` (``"family:qualifier" -> SQL expression`` of
    binary type, see :func:`text`; nulls are not written) of row key ``row`` (SQL) in ``table``
    (or the SQL ``table_expr``) at timestamp ``ts`` (SQL or a number). ``metric`` and
    ``event_time`` (SQL) feed the writer's counts and latencies. Built as SQL text: one call into
    the JVM per DataFrame."""
    from spark_jobs.validation import sql_str

    pairs = ", ".join(f"{sql_str(column)}, {value}" for column, value in cells.items())
    return df.selectExpr(f"{table_expr or sql_str(table)} AS table", f"cast({row} AS string) AS row",
                         f"cast({ts} AS bigint) AS ts", f"map({pairs}) AS cells", f"cast({metric} AS string) AS metric",
                         f"cast({event_time} AS bigint) AS event_time")  # fmt: skip


def text(expr: str) -> str:
    """SQL: a value as the UTF-8 bytes of its text (numbers as Spark prints them)."""
    return f"cast(cast({expr} AS string) AS binary)"


def envelope_cells(ctx: BatchContext) -> dict[str, str]:
    """Cells every event row carries: times, source, Kafka coordinates and the storing batch."""
    from spark_jobs.validation import sql_str

    return {
        "d:event_time": text("event_time"),
        "d:sent_at": text("sent_at"),
        "d:source": text("source"),
        "d:kafka": text("concat_ws(':', topic, cast(partition AS string), cast(offset AS string))"),
        "d:batch": text(sql_str(ctx.label)),
    }
