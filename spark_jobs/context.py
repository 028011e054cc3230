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


def mutation(table: str, row: str, ts: str | int, cells: dict[str, str], *, metric: str = "NULL",
             event_time: str = "NULL", table_expr: str | None = None) -> str:  # fmt: skip
    """SQL: one mutation as a struct of the writer's columns: ``cells`` (``"family:qualifier" ->
    SQL expression`` of binary type, see :func:`text`; nulls are not written) of row key ``row``
    (SQL) in ``table`` (or the SQL ``table_expr``) at timestamp ``ts`` (SQL or a number).
    ``metric`` and ``event_time`` (SQL) feed the writer's counts and latencies."""
    from spark_jobs.validation import sql_str

    pairs = ", ".join(f"{sql_str(column)}, {value}" for column, value in cells.items())
    return (f"named_struct('table', {table_expr or sql_str(table)}, 'row', cast({row} AS string), "
            f"'ts', cast({ts} AS bigint), 'cells', cast(map({pairs}) AS map<string, binary>), "
            f"'metric', cast({metric} AS string), "
            f"'event_time', cast({event_time} AS bigint))")  # fmt: skip


def mutations(df: DataFrame, *outputs: str | tuple[str, str]) -> DataFrame:
    """The mutations of every row of ``df`` in one pass: each output is a :func:`mutation`, or a
    ``(condition, mutation)`` pair written only for the rows where the SQL condition holds.
    Several outputs of the same rows in one projection, not one branch (and one derivation of
    ``df``) each. Built as SQL text: one call into the JVM per DataFrame."""
    items = [o if isinstance(o, str) else f"CASE WHEN {o[0]} THEN {o[1]} END" for o in outputs]
    if len(items) == 1 and isinstance(outputs[0], str):
        return df.selectExpr(f"{items[0]} AS _m").selectExpr("_m.*")
    return df.selectExpr(f"explode(array({', '.join(items)})) AS _m").where("_m IS NOT NULL").selectExpr("_m.*")


def with_feature_steps(df: DataFrame, steps: list[dict[str, str]], when: str | None = None) -> DataFrame:
    """``df`` plus the feature columns of ``steps`` (``name -> SQL``; a step may read the columns
    of the steps before it; names with a leading '_' are helpers, dropped at the end). With
    ``when`` (SQL), a feature is null on the rows where it does not hold."""
    for step in steps:
        df = df.selectExpr("*", *[f"{sql if when is None else f'CASE WHEN {when} THEN {sql} END'} AS {name}"
                                  for name, sql in step.items()])  # fmt: skip
    return df.drop(*[name for step in steps for name in step if name.startswith("_")])


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
