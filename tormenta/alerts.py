"""A failed pipeline is visible in the Airflow UI without reading a log: the run's note says why.

Every task of the Tormenta DAGs has ``note_failure`` as its ``on_failure_callback`` (Airflow calls
it once a task has failed for good, not on a try that will be retried). It appends one line to
the DAG run's note, which the UI shows on the run's page and marks in the grid:

    stream failed (try 1): offsets this query's checkpoint needs are gone from Kafka ...

The note is written through Airflow's REST API with the connection ``airflow_alerts`` (a user
whose role may edit runs; the read-only ``airflow_api`` viewer may not). A note that cannot be
written is logged and never changes the task's outcome.
"""

from __future__ import annotations

import logging
from typing import Any

ALERTS_CONN = "airflow_alerts"
NOTE_LIMIT = 1000  # characters Airflow keeps of a note
REASON_LIMIT = 400

log = logging.getLogger(__name__)


def reason_of(exception: BaseException | str | None) -> str:
    """The first line of a failure, without the provider's boilerplate (Java traces come later)."""
    if exception is None:
        return "no exception recorded (marked failed, or killed)"
    text = str(exception).strip() or type(exception).__name__
    first = text.splitlines()[0].strip()
    return first if len(first) <= REASON_LIMIT else first[: REASON_LIMIT - 1] + "…"


def note_line(task_id: str, map_index: int | None, try_number: int | None, exception: Any) -> str:
    who = task_id if map_index is None or map_index < 0 else f"{task_id}[{map_index}]"
    return f"{who} failed (try {try_number or '?'}): {reason_of(exception)}"


def merged_note(current: str | None, line: str) -> str:
    """The run's note with ``line`` added (once); the oldest lines go first when it is full."""
    lines = [x for x in (current or "").splitlines() if x.strip()]
    if line not in lines:
        lines.append(line)
    while len("\n".join(lines)) > NOTE_LIMIT and len(lines) > 1:
        lines.pop(0)
    return "\n".join(lines)[:NOTE_LIMIT]


def note_failure(context: dict[str, Any]) -> None:
    """``on_failure_callback``: add the task's failure reason to its DAG run's note."""
    try:
        from airflow.sdk import BaseHook

        from tormenta.airflow_api import AirflowClient

        ti = context["ti"]
        line = note_line(ti.task_id, getattr(ti, "map_index", None), getattr(ti, "try_number", None),
                         context.get("exception"))  # fmt: skip
        conn = BaseHook.get_connection(ALERTS_CONN)
        client = AirflowClient(conn.host, conn.login, conn.password)
        current = client.dag_run(ti.dag_id, ti.run_id).get("note")
        client.set_run_note(ti.dag_id, ti.run_id, merged_note(current, line))
        log.info("run note: %s", line)
    except Exception as exc:  # noqa: BLE001 - an alert must never change the task's outcome
        log.warning("could not write the failure into the run's note: %s", exc)
