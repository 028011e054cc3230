"""What the micro-batch DAG offers for traffic reports, and the ingestor it runs."""

from __future__ import annotations

from typing import Any

from tormenta.contracts import topic_for

from .contract import KIND

SOURCE_TITLE = "drivers reporting road incidents"
AVG_EVENT_BYTES = 230


def params() -> dict[str, Any]:
    from airflow.sdk import Param

    return {"traffic_rate": Param(5, type="number", minimum=0.1, maximum=10_000, title="Reports per second",
                                  description="All drivers together.")}  # fmt: skip


def ingestors(p: dict[str, Any], namespace: str) -> tuple[list[dict[str, Any]], float]:
    argv = ["traffic", "--rate", f"{float(p['traffic_rate']):g}", "--topic", topic_for(KIND, namespace)]
    return [{"name": "traffic-1", "module": "ingestors.runner", "argv": argv, "pulls": True}], float(p["traffic_rate"])
