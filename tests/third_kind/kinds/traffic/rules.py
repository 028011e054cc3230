"""Traffic rules as Spark SQL: store each report, count the reports of each road per batch."""

from __future__ import annotations

FEATURES_SQL = [{"serious": "severity >= 3"}]


def mutations(events, ctx, refs=None):
    from spark_jobs.context import envelope_cells, mutation, mutations, text
    from spark_jobs.validation import event_row_key_sql, row_key_sql

    from .contract import KIND

    cells = envelope_cells(ctx)
    for name in ("road_id", "severity", "note", "serious"):
        cells[f"d:{name}"] = text(name)
    reports = mutations(events, mutation(ctx.t(KIND.events_table), event_row_key_sql(), ctx.ts, cells,
                                         metric="'good'", event_time="event_time"))  # fmt: skip
    per_road = events.groupBy("road_id").count()
    roads = mutations(per_road, mutation(ctx.t("traffic_roads"), row_key_sql("road_id"), ctx.ts,
                                         {ctx.contribution_column: text("count")}))  # fmt: skip
    return [reports, roads]
