"""Through the running Airflow API server: DAGs parse, a run reaches success, auth is enforced."""

import urllib.request

import pytest

from tormenta.airflow_api import AirflowApiError, AirflowClient, local_client

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def admin(stack):
    return local_client("admin")


def test_no_import_errors_in_the_running_airflow(admin):
    admin.wait_for_dag("tormenta_smoke")
    assert admin.import_errors() == []


def test_smoke_dag_run_succeeds_and_rows_land_in_hbase(admin, hbase):
    from tormenta.smoke import count_rows

    admin.wait_for_dag("tormenta_smoke")
    admin.set_paused("tormenta_smoke", False)
    run = admin.trigger("tormenta_smoke", conf={"events": 321})
    final = admin.wait_for_run("tormenta_smoke", run["dag_run_id"], timeout=600)
    states = {ti["task_id"]: ti["state"] for ti in admin.task_instances("tormenta_smoke", run["dag_run_id"])}
    assert final["state"] == "success", states
    assert states == {"produce": "success", "spark_kafka_to_hbase": "success", "verify": "success"}
    tag = "".join(ch if ch.isalnum() else "_" for ch in run["dag_run_id"])
    assert count_rows(hbase, tag) == 321


def test_a_trigger_waits_for_a_busy_metadata_database_instead_of_failing(admin, stack):
    """Another writer holds the local SQLite database's write lock for longer than sqlite3's
    default 5 s wait (a scheduler loop on 2 busy cores did, in CI): the trigger waits for its
    turn and is created, instead of a "500 Database error"."""
    import sqlite3
    import threading
    import time

    from tormenta.microbatch import TRIGGERED_DAG_ID

    admin.wait_for_dag(TRIGGERED_DAG_ID)
    assert admin.dag(TRIGGERED_DAG_ID)["is_paused"]  # paused on creation: its run stays queued
    held_seconds = 8
    db = sqlite3.connect(stack.airflow_home / "airflow.db", timeout=60, isolation_level=None,
                         check_same_thread=False)  # fmt: skip
    db.execute("BEGIN IMMEDIATE")  # the write lock; readers go on (WAL)
    release = threading.Timer(held_seconds, lambda: db.execute("ROLLBACK"))
    started = time.monotonic()
    release.start()
    try:
        run = admin.trigger(TRIGGERED_DAG_ID, conf={})
    finally:
        release.join()
        db.close()
    waited = time.monotonic() - started
    try:
        assert waited >= held_seconds - 0.5, f"the trigger did not wait for the lock ({waited:.1f} s)"
        assert admin.dag_run(TRIGGERED_DAG_ID, run["dag_run_id"])["state"] == "queued"
    finally:
        admin.request("DELETE", f"/api/v2/dags/{TRIGGERED_DAG_ID}/dagRuns/{run['dag_run_id']}")


def test_param_schema_rejects_out_of_range(admin):
    with pytest.raises(AirflowApiError) as err:
        admin.trigger("tormenta_smoke", conf={"events": -5})
    assert err.value.status == 400
    assert "minimum" in err.value.body


@pytest.mark.contract(12)
def test_anonymous_requests_are_refused(stack):
    for path in ("/api/v2/dags", "/api/v2/connections", "/api/v2/dags/tormenta_smoke/dagRuns"):
        req = urllib.request.Request(stack.airflow_url + path)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 401, path


@pytest.mark.contract(12)
def test_wrong_password_gets_no_token(stack):
    client = AirflowClient(stack.airflow_url, "admin", "not-the-password")
    with pytest.raises(AirflowApiError) as err:
        client.token()
    assert err.value.status in (401, 403)


@pytest.mark.contract(12)
def test_viewer_can_read_but_not_trigger_or_read_connections(stack):
    viewer = local_client("viewer")
    assert viewer.dag("tormenta_smoke")["dag_id"] == "tormenta_smoke"
    with pytest.raises(AirflowApiError) as err:
        viewer.trigger("tormenta_smoke", conf={"events": 1})
    assert err.value.status == 403
    with pytest.raises(AirflowApiError) as err:
        viewer.request("GET", "/api/v2/connections/hbase_default")
    assert err.value.status == 403


@pytest.mark.parametrize("dag_id,conf,first_task,hint", [
    ("tormenta_microbatch_stop", {"reason": "test", "namespaec": "tormenta"}, "request_stop", "'namespace'"),
    ("tormenta_batch", {"parts": 2, "window_strat": "2026-01-01T00:00Z"}, "window", "'window_start'"),
    ("tormenta_microbatch", {"intervall": "PT2S"}, "plan", "'interval'"),
])  # fmt: skip
def test_unknown_conf_keys_fail_the_run_at_its_first_task_without_retries(admin, dag_id, conf, first_task, hint):
    """A misspelled key must not run with the defaults: the run fails at once and says why."""
    if dag_id == "tormenta_microbatch":  # a queued run would make a running pipeline hand over
        assert not admin.dag_runs(dag_id, ["queued", "running"]), "this test needs no running micro-batch pipeline"
    admin.wait_for_dag(dag_id)
    admin.set_paused(dag_id, False)
    run = admin.trigger(dag_id, conf=conf)
    final = admin.wait_for_run(dag_id, run["dag_run_id"], timeout=900)  # behind a scheduled batch run, maybe
    tis = {ti["task_id"]: ti for ti in admin.task_instances(dag_id, run["dag_run_id"])}
    assert final["state"] == "failed"
    assert tis[first_task]["state"] == "failed" and tis[first_task]["try_number"] == 1
    assert all(ti["state"] in ("upstream_failed", None, "skipped") for t, ti in tis.items() if t != first_task), tis
    text = admin.task_log(dag_id, run["dag_run_id"], first_task, 1)
    key = next(k for k in conf if k.endswith(("aec", "strat", "ll")))
    assert f"unknown conf key(s) {key!r} (did you mean {hint}?)" in text, text[-2000:]


def test_housekeeping_dag_is_on_and_deletes_an_old_window(admin, stack):
    import os
    import time
    import uuid

    from tormenta.housekeeping import DAG_ID

    dag = admin.wait_for_dag(DAG_ID)
    assert dag["is_paused"] is False  # bounded disk without anyone switching it on
    old = stack.home / "landing" / f"w19990101T0000-{uuid.uuid4().hex[:8]}" / "raw" / "part-00000"
    old.parent.mkdir(parents=True)
    old.write_text("{}\n")
    t = time.time() - 30 * 86400
    os.utime(old, (t, t))
    run = admin.trigger(DAG_ID)
    assert admin.wait_for_run(DAG_ID, run["dag_run_id"], timeout=300)["state"] == "success"
    assert not old.parents[1].exists()
    log = admin.task_log(DAG_ID, run["dag_run_id"], "sweep")
    assert f"landing/{old.parents[1].name}" in log
