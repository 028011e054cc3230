"""Latency histograms, resource aggregation, charts and the comparison page (no services)."""

from __future__ import annotations

import re
import xml.dom.minidom

import pytest

from tormenta import charts, latency
from tormenta.compare_page import render

pytestmark = pytest.mark.unit


def test_histogram_buckets_and_percentiles():
    values = [10] * 50 + [1_200] * 45 + [40_000] * 5
    h = latency.histogram(values)
    assert sum(h) == 100
    assert h[0] == 50  # <50 ms
    assert latency.label(7) == "1s-1.5s" and h[7] == 45
    assert latency.percentile(h, 50) <= 50
    assert 1_000 <= latency.percentile(h, 95) <= 1_500
    assert 30_000 <= latency.percentile(h, 99) <= 45_000
    assert latency.percentile([0] * len(h), 50) is None
    assert latency.merge([h, h]) == [2 * n for n in h]


def test_histogram_edges_are_increasing_and_labels_cover_every_bucket():
    assert list(latency.EDGES_MS) == sorted(set(latency.EDGES_MS))
    labels = [latency.label(i) for i in range(len(latency.EDGES_MS) + 1)]
    assert labels[0] == "<50ms" and labels[-1] == ">2d" and len(set(labels)) == len(labels)


def well_formed(svg: str) -> None:
    xml.dom.minidom.parseString(svg)  # raises on broken markup


def test_charts_are_well_formed_svg_and_escape_names():
    labels = [latency.label(i) for i in range(len(latency.EDGES_MS) + 1)]
    h1 = latency.histogram([300, 800, 900, 1_100])
    h2 = latency.histogram([3_600_000, 5_000_000])
    svg = charts.latency_histogram(labels, {"micro-batch": h1, "batch": h2})
    well_formed(svg)
    assert svg.count("<rect") >= 4
    fresh = charts.freshness({"micro-batch": [(1_000, 1.2), (3_000, 0.8)], "batch": [(90_000, 7_200.0)]},
                             {"micro-batch": 0, "batch": 0})  # fmt: skip
    well_formed(fresh)
    assert fresh.count("<circle") == 3
    bars = charts.grouped_bars({"micro-batch": {"<spark>": 12.5}, "batch": {"<spark>": 3.0}}, "CPU-s", "CPU")
    well_formed(bars)
    assert "&lt;spark&gt;" in bars and "<spark>" not in bars
    well_formed(charts.latency_histogram(labels, {}))


def stats(mode, **kw):
    base = {"mode": mode, "dag_id": "tormenta_microbatch" if mode == "micro-batch" else "tormenta_batch",
            "run_id": f"{mode}-run", "state": "success", "namespace": "tormenta", "interval": "PT1S",
            "window": None, "start_ms": 1_000_000, "end_ms": 2_000_000, "read": 10, "good": 9, "dead": 1,
            "dead_by_reason": {"invalid_json": 1}, "throughput_eps": 5.0, "latency_hist": latency.histogram([900] * 9),
            "latency_ms": {"p50": 900.0, "p95": 900.0, "p99": 900.0}, "freshness": [(1_500_000, 1.0)],
            "resources": {"spark": {"cpu_seconds": 4.0, "peak_rss_mb": 900.0}}, "batches": 3}  # fmt: skip
    return {**base, **kw}


def test_page_shows_both_runs_numbers_charts_and_agreement():
    data = {
        "micro_batch": stats("micro-batch"),
        "batch": stats("batch", window={"start": "2026-11-26T14:00:00+00:00", "end": "2026-11-26T15:00:00+00:00",
                                        "start_ms": 0, "end_ms": 1}, run_id="b<script>"),  # fmt: skip
        "agreement": {"status": "agree", "rows": 12, "comments": {"micro_batch": 9, "batch": 9}, "differences": {},
                      "note": "n"},  # fmt: skip
        "latency_buckets": [latency.label(i) for i in range(len(latency.EDGES_MS) + 1)],
    }
    runs = {"micro_batch": [{"run_id": "micro-batch-run", "state": "running"}], "batch": []}
    html = render(data, runs, "http://127.0.0.1:8080", "micro-batch-run", "b<script>")
    assert "How to read this page" in html
    assert "<script>" not in html  # run ids are escaped
    assert "invalid_json" in html and "2026-11-26T14:00:00+00:00" in html
    assert re.search(r"latency p50</th><td class=\"num\">900 ms", html)
    # the charts draw the runs' own numbers: 9 records, all in the latency bucket holding 900 ms
    bucket = latency.label(latency.histogram([900]).index(1))
    for name in ("micro-batch", "batch"):
        assert f"<title>{name} {bucket}: 9 records (100.0%)</title>" in html
    assert re.search(r"<title>micro-batch \S+: 0 records", html) is None  # only buckets that hold records
    # the agreement: numbers compared when both agree; the rows that differ when they do not
    assert 'class="agree">agree &mdash; 12 (page, minute) rows compared; comments: micro-batch 9, batch 9' in html
    data["agreement"] = {"status": "differ", "rows": 12, "comments": {"micro_batch": 9, "batch": 8},
                         "differences": {"pol-01|202611261401": {"micro_batch": 3, "batch": 2}}, "note": "n"}  # fmt: skip
    html = render(data, runs, "http://127.0.0.1:8080", "micro-batch-run", "b<script>")
    assert 'class="agree"' not in html and 'class="differ">differ' in html
    assert "<tr><td>pol-01|202611261401</td><td>3</td><td>2</td></tr>" in html


def test_freshness_axis_labels_are_short_and_distinct():
    svg = charts.freshness({"batch": [(0, 5.0), (60_000, 200_000.0)]}, {"batch": 0})
    labels = re.findall(r'text-anchor="end"[^>]*>([^<]+)<', svg)
    assert labels == ["1s", "10s", "1.7m", "17m", "2.8h", "1.2d", "12d"]


# --- what a new user saw on the page (issue 14), on the in-memory HBase ---------------------------

def run_info(dag_id, run_id, state="success", start_ms=1_000_000, end_ms=2_000_000, **conf):
    from tormenta.compare import RunInfo

    return RunInfo(dag_id, run_id, state, start_ms, end_ms, conf)


def test_the_page_opens_with_the_newest_run_that_has_numbers():
    from tormenta.compare import default_run

    batch = [{"run_id": "b3", "state": "running"}, {"run_id": "b2", "state": "failed"},
             {"run_id": "b1", "state": "success"}]  # fmt: skip
    assert default_run(batch, "batch")["run_id"] == "b1"
    micro = [{"run_id": "m2", "state": "failed"}, {"run_id": "m1", "state": "running"}]
    assert default_run(micro, "micro-batch")["run_id"] == "m1"
    assert default_run([{"run_id": "b9", "state": "failed"}], "batch")["run_id"] == "b9"  # none usable: the newest
    assert default_run([], "batch") is None


def test_runs_whose_tables_were_dropped_get_a_reason_not_an_error():
    from tests.fakes import MemoryHBase
    from tormenta import schema
    from tormenta.compare import compare

    hbase = MemoryHBase()
    schema.ensure_tables(hbase, "kept")
    data = compare(hbase, run_info("tormenta_microbatch", "m1", namespace="gone"),
                   run_info("tormenta_batch", "b1", namespace="kept", source_namespace="gone"))  # fmt: skip
    m = data["micro_batch"]
    assert m["missing"].startswith("the micro-batch run's tables are gone (gone_microbatch_metrics")
    assert data["agreement"] == {"status": "n/a", "why": m["missing"]}
    html = render({**data, "batch": stats("batch")}, {"micro_batch": [], "batch": []}, "", "m1", None)
    assert f'<p class="differ">{m["missing"]}</p>' in html.replace("&#x27;", "'")
    assert "every None" not in html  # a gone run has no interval to show


def test_runs_that_did_not_overlap_the_window_are_not_called_in_agreement():
    from tests.fakes import MemoryHBase
    from tormenta import schema
    from tormenta.compare import agreement, overlaps

    assert overlaps(100, None, 0, 200) and overlaps(100, 150, 0, 200) and overlaps(0, 150, 100, 200)
    assert not overlaps(200, None, 0, 200) and not overlaps(0, 100, 100, 200) and not overlaps(None, None, 0, 9)
    hbase = MemoryHBase()
    schema.ensure_tables(hbase, "tormenta")
    window = {"start": "14:00", "end": "15:00", "start_ms": 5_000_000, "end_ms": 6_000_000}
    batch = stats("batch", window=window, source_namespace="tormenta", namespace="tormenta")
    res = agreement(hbase, stats("micro-batch", start_ms=1_000_000, end_ms=2_000_000), batch)
    assert res["status"] == "n/a" and "did not run during the batch window (14:00 to 15:00)" in res["why"]
    res = agreement(hbase, stats("micro-batch", start_ms=1_000_000, end_ms=None), batch)  # still running
    assert res["status"] == "n/a" and res["why"] == "no aggregates in the window on either side"


def test_a_run_without_cpu_and_memory_figures_says_why():
    data = {"micro_batch": stats("micro-batch", state="running", resources={}),
            "batch": stats("batch", state="failed", resources={}), "agreement": {"status": "n/a", "why": "w"},
            "latency_buckets": [latency.label(i) for i in range(len(latency.EDGES_MS) + 1)]}  # fmt: skip
    html = render(data, {"micro_batch": [], "batch": []}, "", None, None)
    assert html.count("micro-batch: no CPU or memory figures yet: each process&#x27;s are recorded when it "
                      "ends, and the run is running") == 2  # under the CPU chart and the memory chart
    assert html.count("batch: no CPU or memory figures were recorded for this run") == 2
    assert "no CPU or memory" not in render({**data, "micro_batch": stats("micro-batch"), "batch": stats("batch")},
                                            {"micro_batch": [], "batch": []}, "", None, None)  # fmt: skip


def test_the_page_opened_from_another_dags_run_says_so():
    from tormenta.compare_page import other_dag

    html = other_dag("tormenta_smoke", ("tormenta_microbatch", "tormenta_batch"), "http://h")
    assert "tormenta_smoke is\nneither, so there is nothing to compare for this run" in html
    assert 'href="http://h/plugin/batch-vs-micro-batch"' in html


def test_the_page_shows_the_batch_runs_agree_task_result_per_aggregate():
    """The agree task stored its check beside the run record: the page shows it, not a live count."""
    from tests.fakes import MemoryHBase
    from tests.unit.test_agreement import END, LABEL, START, Paths
    from tormenta import agreement, schema
    from tormenta import batch as batch_mod
    from tormenta.compare import RunInfo, batch_stats
    from tormenta.compare import agreement as page_agreement

    p = Paths()
    p.comment(START + 30_000)
    p.comment(START + 60_500, page="pol-09", batch=False)
    check = agreement.check(p.hbase, "micro", "win", START, END, LABEL)
    hbase = MemoryHBase()
    schema.ensure_tables(hbase, "win")
    record = {"window": {"label": LABEL, "start_ms": START, "end_ms": END, "start": "s", "end": "e"}, "run_id": "b1"}
    batch_mod.store_run_record(hbase, "win", record)
    run = RunInfo("tormenta_batch", "b1", "success", START, END, {"namespace": "win", "source_namespace": "micro"})
    assert batch_stats(hbase, run)["agree_check"] is None  # the agree task has not run yet
    agreement.store(hbase, "win", LABEL, "b1", check)
    b = batch_stats(hbase, run)
    assert b["agree_check"] == check
    res = page_agreement(hbase, stats("micro-batch", namespace="micro", start_ms=START, end_ms=None), b)
    assert res["status"] == "differ" and res["check"]["differ"] == 2
    html = render({"micro_batch": stats("micro-batch"), "batch": stats("batch"), "agreement": res,
                   "latency_buckets": [latency.label(i) for i in range(len(latency.EDGES_MS) + 1)]},
                  {"micro_batch": [], "batch": []}, "", None, None)  # fmt: skip
    assert "the batch run's agree task compared 4 aggregate rows: 2 the same, 0 off by the window" in html
    assert re.search(r"<th>social_minute</th><td class=\"num\">2</td><td class=\"num\">1</td>"
                     r"<td class=\"num\">0</td><td class=\"num\">0</td><td class=\"num\">1</td>", html)  # fmt: skip
    assert "pol-09|" in html
    skipped = {"agree": None, "why": "the micro-batch query of namespace 'micro' stored no micro-batch",
               "compared": 0, "differ": 0, "aggregates": []}  # fmt: skip
    agreement.store(hbase, "win", LABEL, "b1", skipped)
    res = page_agreement(hbase, stats("micro-batch", namespace="micro", start_ms=START, end_ms=None),
                         batch_stats(hbase, run))  # fmt: skip
    assert res == {"status": "n/a", "why": f"the agree task: {skipped['why']}"}


def test_the_verdict_says_how_much_fresher_for_how_much_cpu_and_whether_they_agree():
    from tormenta.compare import cpu_per_event, verdict

    m = stats("micro-batch", good=10_000, latency_ms={"p50": 1_200.0},
              resources={"spark": {"cpu_seconds": 30.0, "peak_rss_mb": 1}, "hbase writes": {"cpu_seconds": 9.0,
                         "peak_rss_mb": 1}, "ingestors": {"cpu_seconds": 500.0, "peak_rss_mb": 1}})  # fmt: skip
    b = stats("batch", good=10_000, latency_ms={"p50": 113_000.0},
              resources={"spark": {"cpu_seconds": 30.0, "peak_rss_mb": 1}})  # fmt: skip
    assert cpu_per_event(m) == 39.0 / 10_000  # the ingestors feed both paths: not counted
    v = verdict(m, b, {"status": "agree"})
    assert v["text"] == ("Micro-batch delivered data 94.2x fresher (p50 1.2 s vs 113.0 s) for 1.3x the processing "
                         "CPU-seconds per event (3.9 vs 3 per 1,000 events); both computed the same aggregates.")
    assert v["fresher_x"] == 94.2 and v["cpu_x"] == 1.3
    v = verdict(m, {**b, "resources": {}}, {"status": "differ", "check": {"differ": 3}})
    assert "CPU per event unknown (no figures for batch)" in v["text"] and "DIFFER (3 rows)" in v["text"]
    v = verdict({**m, "latency_ms": {"p50": None}}, b, {"status": "n/a", "why": "no overlap"})
    assert v["text"].startswith("No latency figures on the micro-batch side;") and v["text"].endswith(
        "whether they agree is not known: no overlap.")
    assert verdict(None, b, {})["text"].startswith("Pick a micro-batch run")
    html = render({"micro_batch": m, "batch": b, "agreement": {"status": "agree", "check": None, "rows": 1,
                   "comments": {"micro_batch": 1, "batch": 1}}, "verdict": verdict(m, b, {"status": "agree"}),
                   "latency_buckets": [latency.label(i) for i in range(len(latency.EDGES_MS) + 1)]},
                  {"micro_batch": [], "batch": []}, "", None, None)  # fmt: skip
    assert '<p class="verdict">Micro-batch delivered data 94.2x fresher' in html
    assert re.search(r"<th>processing CPU-s / 1,000 events</th><td class=\"num\">3.9</td><td class=\"num\">3</td>", html)


def test_a_batch_runs_record_is_one_get_of_its_run_index_row_however_many_windows_are_stored():
    from tests.fakes import MemoryHBase
    from tormenta import batch as batch_mod
    from tormenta import schema
    from tormenta.compare import RunInfo, batch_stats

    hbase = MemoryHBase()
    schema.ensure_tables(hbase, "win")
    for i in range(300):
        batch_mod.store_run_record(hbase, "win", {"window": {"label": f"w{i:012d}-x", "start_ms": i, "end_ms": i + 1,
                                                             "start": "s", "end": "e"}, "run_id": f"b{i}", "good": i})  # fmt: skip
    scans: list[str] = []

    class Spy:  # the store, counting the scans of the batch_runs table
        def tables(self):
            return hbase.tables()

        def table(self, name):
            real = hbase.table(name)
            if name != "win_batch_runs":
                return real
            return type("T", (), {"row": staticmethod(real.row),
                                  "scan": staticmethod(lambda **k: scans.append(name) or real.scan(**k))})()

    run = RunInfo("tormenta_batch", "b123", "success", 0, 1, {"namespace": "win"})
    assert batch_stats(Spy(), run)["good"] == 123
    assert scans == []  # one get of run|b123, not a scan of 300 windows
    assert len(batch_mod.window_rows(hbase, "win")) == 300  # the index rows are not windows
