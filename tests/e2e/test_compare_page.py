"""The "Batch vs micro-batch" plugin page, with the story's real runs of both DAGs behind it."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

import pytest

from tests.e2e.story import EVENTS_PER_INGESTOR, INGESTORS
from tormenta.stack.airflow_setup import passwords_file

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def runs(story, batch_window):
    return {"micro": story["run2"], "batch": batch_window["run"], "ns": story["ns"]}


def get(stack, admin, path: str, token: str | None = "admin") -> tuple[int, str]:
    req = urllib.request.Request(stack.airflow_url + path)
    if token:
        req.add_header("Authorization", f"Bearer {admin.token()}")
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_runs_endpoint_lists_both_pipelines(stack, admin, runs):
    status, body = get(stack, admin, "/tormenta/api/runs?limit=50")
    assert status == 200, body
    doc = json.loads(body)
    assert runs["micro"] in [r["run_id"] for r in doc["micro_batch"]]
    assert runs["batch"] in [r["run_id"] for r in doc["batch"]]


def test_compare_endpoint_gives_the_numbers_of_both_runs(stack, admin, runs):
    q = urllib.parse.urlencode({"micro": runs["micro"], "batch": runs["batch"]})
    status, body = get(stack, admin, f"/tormenta/api/compare?{q}")
    assert status == 200, body
    doc = json.loads(body)
    m, b = doc["micro_batch"], doc["batch"]
    assert m["mode"] == "micro-batch" and m["interval"] == "PT1S" and m["namespace"] == runs["ns"]
    assert m["batches"] > 0 and m["good"] > 0  # run 2 stored the 300 events its feeds added
    assert b["good"] == INGESTORS * EVENTS_PER_INGESTOR and b["window"]["label"].startswith("w")
    for s in (m, b):
        assert s["latency_ms"]["p50"] is not None and s["latency_ms"]["p50"] > 0
        assert sum(s["latency_hist"]) == s["good"]
        assert s["freshness"]
    # events re-sent after run 2's resume (if any: it depends on when run 1 saved its positions)
    # are the window's only dead letters
    assert set(b["dead_by_reason"]) <= {"duplicate_event_id"}, b["dead_by_reason"]
    assert {"ingestors", "spark", "hbase writes"} <= set(m["resources"])
    assert {"spark", "hbase writes"} <= set(b["resources"])
    assert all(u["cpu_seconds"] > 0 and u["peak_rss_mb"] > 0 for u in m["resources"].values())
    # the batch run's agree task result: every aggregate of the window, row by row
    assert doc["agreement"]["status"] == "agree", doc["agreement"]
    check = doc["agreement"]["check"]
    tallies = {t["aggregate"]: t for t in check["aggregates"]}
    assert check["differ"] == 0 and tallies["social_minute"]["compared"] > 0 and tallies["social_authors"]["compared"] > 0
    assert doc["verdict"]["text"].startswith("Micro-batch delivered data ") and doc["verdict"]["fresher_x"] > 1
    assert doc["verdict"]["text"].endswith("both computed the same aggregates.")


@pytest.mark.contract(12)
def test_anonymous_requests_to_the_page_and_its_endpoints_are_refused(stack, admin, runs):
    for path in ("/tormenta/compare", "/tormenta/api/compare", "/tormenta/api/runs"):
        status, _ = get(stack, admin, path, token=None)
        assert status == 401, path


def test_unknown_run_is_a_404(stack, admin, runs):
    status, _ = get(stack, admin, "/tormenta/api/compare?micro=no-such-run")
    assert status == 404


def test_browser_logs_in_and_sees_both_runs_numbers_and_charts(stack, runs):
    from tests.e2e.browser import logged_in, shoot

    password = json.loads(passwords_file(stack).read_text())["viewer"]  # read-only users see it too
    q = urllib.parse.urlencode({"micro": runs["micro"], "batch": runs["batch"]})
    with logged_in(stack.airflow_url, "viewer", password, height=1600) as page:
        page.goto(f"{stack.airflow_url}/tormenta/compare?{q}")
        page.get_by_text("How to read this page").wait_for(timeout=60_000)
        text = page.inner_text("body")
        svgs = page.locator("svg.chart").count()
        bars = page.locator("svg.chart rect").count()
        shoot(page, "compare-page")
        # the same page inside the Airflow UI, from the navigation
        page.goto(f"{stack.airflow_url}/plugin/batch-vs-micro-batch")
        page.frame_locator("iframe").first.get_by_text("How to read this page").wait_for(timeout=60_000)
        shoot(page, "compare-page-in-airflow-ui")
    assert runs["micro"] in text and runs["batch"] in text
    assert f"{INGESTORS * EVENTS_PER_INGESTOR:,}" in text
    assert "agree" in text and "latency p99" in text
    assert svgs == 4 and bars > 10


def test_the_page_opened_from_a_run_of_another_dag_says_it_compares_nothing_there(stack, admin):
    status, body = get(stack, admin, "/tormenta/compare?dag_id=tormenta_smoke&run_id=manual__x")
    assert status == 200, body
    assert "tormenta_smoke is\nneither, so there is nothing to compare for this run" in body
    assert "How to read this page" not in body  # not the newest runs of the two pipelines instead


def test_a_run_whose_tables_were_dropped_is_shown_with_the_reason(stack, hbase, unique):
    """On the real HBase: the Thrift server answers a scan of a dropped table with an error; the page
    must not (it answered HTTP 500 after the test suite dropped its namespaces)."""
    from tormenta.compare import RunInfo, compare

    gone = f"gone{unique}"
    micro = RunInfo("tormenta_microbatch", "m", "success", 1, 2, {"namespace": gone})
    batch = RunInfo("tormenta_batch", "b", "success", 1, 2, {"namespace": f"{gone}b", "source_namespace": gone})
    data = compare(hbase, micro, batch)
    assert data["micro_batch"]["missing"].startswith(f"the micro-batch run's tables are gone ({gone}_")
    assert data["batch"]["missing"].startswith(f"the batch run's tables are gone ({gone}b_")
    assert data["agreement"]["status"] == "n/a"
