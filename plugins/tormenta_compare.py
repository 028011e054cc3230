"""Airflow plugin: the "Batch vs micro-batch" page and the live view (FastAPI app + external views).

* ``/tormenta/compare``      the page (server-side SVG charts, works offline)
* ``/tormenta/api/runs``     recent runs of both pipelines
* ``/tormenta/api/compare``  the numbers behind the page (JSON)
* ``/tormenta/live``         the live view of a namespace's HBase tables (``?ns=``), refreshed in place
* ``/tormenta/live/fragment``  the part of it that refreshes; ``/tormenta/api/live``: its data (JSON)

Every route requires an Airflow login (the UI's session cookie or a bearer token) and read
access to the runs of both DAGs; anonymous requests get 401, others without access 403.
"""

from __future__ import annotations

from typing import Annotated, Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import get_user
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse

from tormenta.batch import DAG_ID as BATCH_DAG_ID
from tormenta.compare import default_run
from tormenta.microbatch import DAG_ID as MICROBATCH_DAG_ID

MB, BATCH = MICROBATCH_DAG_ID, BATCH_DAG_ID

app = FastAPI(title="Tormenta: batch vs micro-batch", docs_url=None, redoc_url=None, openapi_url=None)


def authorized_user(user: Annotated[Any, Depends(get_user)]) -> Any:
    """Airflow's own authentication (UI session cookie or bearer token) + read access to both DAGs."""
    auth = get_auth_manager()
    for dag_id in (MB, BATCH):
        if not auth.is_authorized_dag(method="GET", access_entity=DagAccessEntity.RUN,
                                      details=DagDetails(id=dag_id), user=user):  # fmt: skip
            raise HTTPException(status_code=403, detail=f"no read access to the runs of {dag_id}")
    return user


User = Annotated[Any, Depends(authorized_user)]


def _runs(dag_id: str, limit: int = 30) -> list[dict[str, Any]]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.run_after.desc()).limit(limit)
        ).all()
        return [{
            "dag_id": r.dag_id, "run_id": r.run_id, "state": str(r.state),
            "start_ms": int(r.start_date.timestamp() * 1000) if r.start_date else None,
            "end_ms": int(r.end_date.timestamp() * 1000) if r.end_date else None,
            "conf": dict(r.conf or {}),
        } for r in rows]  # fmt: skip


def _endpoint():
    from airflow.models.connection import Connection

    from tormenta.providers.hbase import HBaseHook

    return HBaseHook.endpoint_from(Connection.get_connection_from_secrets("hbase_default"))


def _select(micro: str | None, batch: str | None, dag_id: str | None, run_id: str | None):
    if dag_id == MB and run_id and not micro:
        micro = run_id
    if dag_id == BATCH and run_id and not batch:
        batch = run_id
    runs = {"micro_batch": _runs(MB), "batch": _runs(BATCH)}
    m = next((r for r in runs["micro_batch"] if r["run_id"] == micro), None) if micro else None
    b = next((r for r in runs["batch"] if r["run_id"] == batch), None) if batch else None
    if micro and m is None or batch and b is None:
        raise HTTPException(status_code=404, detail="no such run")
    m = m or default_run(runs["micro_batch"], "micro-batch")
    b = b or default_run(runs["batch"], "batch")
    return runs, m, b


def _compare(m: dict | None, b: dict | None) -> dict[str, Any]:
    from tormenta.compare import RunInfo, compare

    def info(r):
        return RunInfo(**r) if r else None

    with _endpoint().session() as conn:
        return compare(conn, info(m), info(b))


@app.get("/api/runs")
def api_runs(user: User, limit: Annotated[int, Query(ge=1, le=200)] = 30) -> dict[str, Any]:
    return {"micro_batch": _runs(MB, limit), "batch": _runs(BATCH, limit)}


@app.get("/api/compare")
def api_compare(user: User, micro: str | None = None, batch: str | None = None) -> dict[str, Any]:
    _, m, b = _select(micro, batch, None, None)
    return _compare(m, b)


@app.get("/compare", response_class=HTMLResponse)
def page(user: User, micro: str | None = None, batch: str | None = None, dag_id: str | None = None,
         run_id: str | None = None) -> HTMLResponse:  # fmt: skip
    from airflow.configuration import conf

    from tormenta.compare_page import other_dag, render

    base = conf.get("api", "base_url", fallback="").rstrip("/")
    if dag_id and dag_id not in (MB, BATCH):
        return HTMLResponse(other_dag(dag_id, (MB, BATCH), base))
    runs, m, b = _select(micro, batch, dag_id, run_id)
    data = _compare(m, b)
    return HTMLResponse(render(data, runs, base, m and m["run_id"], b and b["run_id"]))


LIVE_REFRESH_S = 3.0


def _live(ns: str) -> tuple[dict[str, Any], list[str]]:
    import re

    from tormenta.contracts import NAMESPACE_PATTERN
    from tormenta.live import snapshot

    if not re.fullmatch(NAMESPACE_PATTERN, ns):
        raise HTTPException(status_code=400, detail="ns: not a namespace")
    with _endpoint().session() as conn:
        namespaces = sorted({t.decode()[: -len("_social_minute")] for t in conn.tables() if t.endswith(b"_social_minute")}
                            | {ns})  # fmt: skip
        return snapshot(conn, ns), namespaces


@app.get("/api/live")
def api_live(user: User, ns: str = "tormenta") -> dict[str, Any]:
    return _live(ns)[0]


@app.get("/live/fragment", response_class=HTMLResponse)
def live_fragment(user: User, ns: str = "tormenta") -> HTMLResponse:
    from tormenta.live_page import fragment

    return HTMLResponse(fragment(_live(ns)[0]))


@app.get("/live", response_class=HTMLResponse)
def live(user: User, ns: str = "tormenta") -> HTMLResponse:
    from tormenta.live_page import render

    data, namespaces = _live(ns)
    return HTMLResponse(render(data, namespaces, LIVE_REFRESH_S))


class TormentaComparePlugin(AirflowPlugin):
    name = "tormenta_compare"
    fastapi_apps = [{"app": app, "url_prefix": "/tormenta", "name": "Tormenta: batch vs micro-batch"}]
    external_views = [
        {"name": "Batch vs micro-batch", "href": "tormenta/compare", "destination": "nav",
         "category": "browse", "url_route": "batch-vs-micro-batch"},
        {"name": "Batch vs micro-batch", "href": "tormenta/compare?dag_id={DAG_ID}&run_id={RUN_ID}",
         "destination": "dag_run", "url_route": "batch-vs-micro-batch-run"},
        {"name": "Live: what is in HBase", "href": "tormenta/live", "destination": "nav", "category": "browse",
         "url_route": "tormenta-live"},
    ]  # fmt: skip
