"""Both pipelines through the running Airflow REST API: the story in conftest.py, checked here."""

from __future__ import annotations

import datetime as dt
import json
import os
import time

import pytest

from tests.e2e.story import BATCH, EVENTS_PER_INGESTOR, INGESTORS, MB, Fresh
from tormenta.airflow_api import AirflowApiError

pytestmark = pytest.mark.e2e


def test_events_reach_hbase_and_the_run_keeps_running(story):
    assert story["run1_state_with_rows"] == "running"
    assert story["run1_state_after_kill"] == "running"


def test_running_ingest_tasks_are_labelled_with_their_ingestor_names(story):
    names = ["social-pol-03-1of2", "social-pol-03-2of2", "social-pages-1"]  # the plan's order: hot page first
    running = story["ingest_labels_while_running"]
    assert running, "no ingest task was running when the first events reached HBase"
    assert all(label == names[i] for i, label in running), running


def test_the_running_run_shows_its_tasks_and_retries_in_the_ui(story):
    text = story["ui_running_run"]["text"]
    for expected in ("Running", "stream", "supervise", "ingest", "IngestorOperator", "SparkJobOperator"):
        assert expected in text, expected
    assert os.path.getsize(story["ui_running_run"]["screenshot"]) > 20_000


def test_trigger_form_shows_the_params_with_titles_and_descriptions(admin, stack):
    import json

    from tests.e2e.browser import logged_in, shoot
    from tormenta.stack.airflow_setup import passwords_file

    password = json.loads(passwords_file(stack).read_text())["admin"]
    with logged_in(stack.airflow_url, "admin", password, height=1400) as page:
        page.goto(f"{stack.airflow_url}/dags/{MB}")
        page.get_by_role("button", name="Trigger").first.click()
        page.get_by_text("Micro-batch interval").first.wait_for(timeout=30_000)
        shoot(page, "microbatch-trigger-form")
        text = page.inner_text("body")
    for expected in ("Micro-batch interval", "ISO 8601 duration", "Hot pages", "Max records per micro-batch"):
        assert expected in text, expected


def test_killed_ingestor_and_driver_are_restarted_and_nothing_is_lost_or_doubled(story, hbase):
    from tormenta.batch import social_minute_totals

    assert story["retried_ingestors"], "no ingestor task was retried after kill -9"
    assert story["rows"] == INGESTORS * EVENTS_PER_INGESTOR  # every event id stored, once
    totals = social_minute_totals(hbase, story["ns"], 0, 4_102_444_800_000)
    assert sum(v["comments"] for v in totals.values()) == INGESTORS * EVENTS_PER_INGESTOR  # counted once
    # re-sent events after the resume are dead-lettered as duplicates, nothing else went wrong
    assert set(story["dead"]) <= {"duplicate_event_id"}, story["dead"]


def test_new_interval_hands_over_and_continues_on_the_same_checkpoint(story):
    assert story["run1_final"] == "success", story["run1_tis"]
    assert story["control_run1"]["stop"].startswith("handover")
    # run 2's query continued the batch ids of run 1's checkpoint (query version 1)
    first = story["control_run1"]["stopped"]["stream"]["last_batch"]
    last = story["control_run2"]["stopped"]["stream"]["last_batch"]
    assert first is not None and last is not None and last > first


def test_a_queued_run_that_cannot_run_does_not_take_the_pipeline_down(story):
    assert story["run1_state_with_bad_queued"] == "running"
    assert story["bad_state_while_run1_runs"] == "queued"
    assert story["bad_final"] == "failed"  # at its plan task, when its turn came
    assert story["control_run1"]["stop"].startswith("handover")  # to run 2, triggered after it


def test_stop_dag_stops_everything_in_order_and_leaves_no_process(story):
    assert story["stop_final"] == "success"
    assert story["run2_final"] == "success"
    state = story["control_run2"]
    assert state["phase"] == "stopped"
    ingestors = {k: v for k, v in state["stopped"].items() if k != "stream"}
    assert len(ingestors) == INGESTORS
    # the stream stopped after the last ingestor (it drains what they sent)
    assert state["stopped"]["stream"]["at"] >= max(v["at"] for v in ingestors.values())
    assert story["left_running"] == []


def test_tasks_outlive_several_execution_token_lifetimes(story, admin, token_lifetime):
    assert token_lifetime <= 120, "run the e2e suite with TORMENTA_TASK_TOKEN_SECONDS=60 (tests/conftest.py)"
    supervise = next(t for t in story["run1_tis"] if t["task_id"] == "supervise")
    assert supervise["state"] == "success" and supervise["try_number"] == 1
    assert supervise["duration"] > 2.5 * token_lifetime, supervise["duration"]


def test_batch_window_succeeds_and_agrees_with_the_micro_batch_path(story, batch_window, hbase):
    from tormenta.batch import compare_social, resolve_window

    assert batch_window["final"]["state"] == "success"
    c = batch_window["conf"]
    w = resolve_window(c["window_start"], c["window_end"], dt.datetime.now(dt.UTC))
    result = compare_social(hbase, story["ns"], story["ns"] + "b", w.start_ms, w.end_ms)
    assert result["comments"] == {"micro_batch": INGESTORS * EVENTS_PER_INGESTOR,
                                  "batch": INGESTORS * EVENTS_PER_INGESTOR}  # fmt: skip
    assert result["agree"] is True, result["differences"]
    from tormenta.batch import window_rows

    runs = window_rows(hbase, story["ns"] + "b")
    assert len(runs) == 1 and runs[0][0].decode().startswith(w.label)
    # The run's agree task compared every aggregate of both paths and stored what it found.
    check = json.loads(runs[0][1][b"d:agree"])
    assert check["agree"] is True and check["differ"] == 0, check
    tallies = {t["aggregate"]: t for t in check["aggregates"]}
    assert tallies["social_minute"]["compared"] == result["rows"]
    assert tallies["social_authors"]["compared"] > 0
    assert check["compared"] == sum(t["compared"] for t in tallies.values())


def clear_agree(admin, run: str) -> dict:
    admin.request("POST", f"/api/v2/dags/{BATCH}/clearTaskInstances",
                  {"dry_run": False, "dag_run_id": run, "task_ids": ["agree"], "only_failed": False,
                   "reset_dag_runs": True})  # fmt: skip
    time.sleep(2)
    return admin.wait_for_run(BATCH, run, timeout=600)


def test_the_agree_task_fails_on_a_row_the_two_paths_disagree_on(story, batch_window, admin, hbase):
    """One comment more on the micro-batch side, in the middle of the window: the cleared agree
    task fails and names the row; without it, the task passes again."""
    from tormenta.contracts import row_key

    assert batch_window["final"]["state"] == "success"
    table = hbase.table(story["ns"] + "_social_minute")
    mid = batch_window["start"] + (batch_window["end"] - batch_window["start"]) / 2
    row = row_key("pol-tampered", mid.strftime("%Y%m%d%H%M"))
    table.put(row, {b"m:tampered": json.dumps({"comments": 1, "mentions": 0, "sentiment_sum": 0.0}).encode()})
    try:
        assert clear_agree(admin, batch_window["run"])["state"] == "failed"
        log = admin.task_log(BATCH, batch_window["run"], "agree", try_number=2)
        assert "1 of " in log and "aggregate rows differ" in log, log[-3000:]
        assert row.decode() in log
    finally:
        table.delete(row)
    assert clear_agree(admin, batch_window["run"])["state"] == "success"


def test_rerunning_a_window_leaves_hbase_identical(story, batch_window, admin, stack):
    from tormenta.hbase import HBaseEndpoint

    fresh = Fresh(HBaseEndpoint(stack.bind_host, stack.thrift_port))
    tables = ["social_comments", "social_minute", "social_authors", "dead_letters", "geo_state", "geo_trips"]
    before = fresh.snapshot(story["ns"] + "b", tables)
    assert sum(len(rows) for rows in before.values()) > INGESTORS * EVENTS_PER_INGESTOR
    run = admin.trigger(BATCH, conf=batch_window["conf"])["dag_run_id"]
    assert admin.wait_for_run(BATCH, run, timeout=900)["state"] == "success"
    assert fresh.snapshot(story["ns"] + "b", tables) == before
    records = [k for k, *_ in fresh.snapshot(story["ns"] + "b", ["batch_runs"])["batch_runs"] if k.startswith(b"w")]
    assert len(records) == 2  # one record per run


HOSTILE_MICROBATCH = [
    {"interval": "1; rm -rf /"}, {"interval": "$(reboot)"}, {"interval": "PT1S`id`"}, {"interval": "0"},
    {"interval": "PT2H"}, {"interval": "PT0.01S"}, {"interval": "1000000000"}, {"interval": "3601"},
    {"namespace": "../etc"}, {"namespace": "a b"}, {"namespace": "x;ls"}, {"namespace": "A" * 50},
    {"rate_per_page": -1}, {"rate_per_page": 1e12}, {"max_records_per_batch": 0},
    {"hot_pages": ["../../x"]}, {"pages": ["pol-03 --rate 1e9"]}, {"storm_page": "pol-99"},
    {"sources": ["social", "rm -rf"]}, {"ingestors_per_hot_page": 100}, {"query_version": 0},
]  # fmt: skip
HOSTILE_BATCH = [
    {"window_start": "2026-01-01T00:00Z; ls", "window_end": "2026-01-02T00:00Z"},
    {"window_start": "../../etc/passwd", "window_end": ""}, {"parts": 0}, {"parts": 100_000},
    {"namespace": "ok/../x"}, {"source": "http://evil"}, {"source_namespace": "$(id)"},
]  # fmt: skip


@pytest.mark.contract(11)
@pytest.mark.parametrize("dag_id,conf", [(MB, c) for c in HOSTILE_MICROBATCH] + [(BATCH, c) for c in HOSTILE_BATCH])
def test_hostile_params_are_rejected_by_the_schema(admin, dag_id, conf):
    with pytest.raises(AirflowApiError) as err:
        admin.trigger(dag_id, conf=conf)
    assert err.value.status == 400, err.value.body


def _secrets(stack) -> dict[str, str]:
    """Every secret of the stack: the Airflow keys, the geo device key and every user's password (the viewer's is also
    the `airflow_api` connection's, which the supervisor uses)."""
    from tormenta.stack.airflow_setup import passwords_file

    out = {f.name: f.read_text().strip() for f in stack.secrets_dir.iterdir() if f.suffix in (".key", ".secret")}
    out |= {f"password of {u}": pw for u, pw in json.loads(passwords_file(stack).read_text()).items()}
    assert len(out) >= 5 and all(len(v) >= 20 for v in out.values()), sorted(out)
    return out


@pytest.mark.contract(13)
def test_secrets_appear_in_no_task_log_rendered_field_xcom_or_process_list(story, admin, stack):
    secrets = _secrets(stack)
    seen: list[tuple[str, str]] = []  # (where, text)
    seen += [("process list", line) for line in story["cmdlines"]]
    for run in (story["run1"], story["run2"]):
        for t in admin.task_instances(MB, run):
            where = f"{run}/{t['task_id']}[{t['map_index']}]"
            seen.append((f"{where} rendered fields", json.dumps(t.get("rendered_fields"))))
            for try_number in range(1, (t["try_number"] or 0) + 1):
                seen.append((f"{where} log try {try_number}",
                             admin.task_log(MB, run, t["task_id"], try_number, t["map_index"])))  # fmt: skip
        entries = admin.request("GET", f"/api/v2/dags/{MB}/dagRuns/{run}/taskInstances/~/xcomEntries?limit=1000")
        for x in entries["xcom_entries"]:
            value = admin.request("GET", f"/api/v2/dags/{MB}/dagRuns/{run}/taskInstances/{x['task_id']}/xcomEntries/"
                                         f"{x['key']}?map_index={x['map_index']}&stringify=true")  # fmt: skip
            seen.append((f"{run}/{x['task_id']} xcom {x['key']}", json.dumps(value)))
    assert len(seen) > 20 and any("log try" in w for w, _ in seen)
    leaks = [(where, name) for where, text in seen for name, secret in secrets.items() if secret in text]
    assert not leaks, leaks
