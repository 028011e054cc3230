"""Storm on demand (tormenta_storm): the control plane's record, what the running social feed
does with it, and what the comparison page makes of a run's batches around it."""

from __future__ import annotations

import json
import xml.dom.minidom

import pytest

from tests.fakes import MemoryHBase
from tormenta import charts, microbatch, schema
from tormenta.compare import recovery
from tormenta.control import ControlPlane, active_storm, run_storms

pytestmark = pytest.mark.unit


@pytest.fixture
def control():
    hbase = MemoryHBase()
    schema.ensure_tables(hbase, "ns")
    return ControlPlane(hbase, "ns")


def test_a_storm_needs_a_running_pipeline_and_is_kept_on_its_run(control):
    with pytest.raises(microbatch.StormError, match="no micro-batch pipeline is running in namespace 'ns'"):
        microbatch.start_storm(control, "pol-03", 20, 2)
    control.begin("r1")
    doc = microbatch.start_storm(control, "pol-03", 20, 2)
    assert doc["run_id"] == "r1" and doc["until_ms"] - doc["from_ms"] == 120_000
    control.add_storm("r1", "pol-05", 5, 1, now_ms=doc["from_ms"] + 1)
    storms = control.state("r1")["storms"]
    assert [s["page"] for s in storms] == ["pol-03", "pol-05"] == [s["page"] for s in run_storms(control.endpoint, "ns", "r1")]
    assert active_storm(storms, doc["from_ms"] + 10)["page"] == "pol-05"  # the newest one blowing
    assert active_storm(storms, doc["from_ms"] + 61_000)["page"] == "pol-03"  # pol-05's minute is over
    assert active_storm(storms, doc["until_ms"]) is None
    control.request_stop("r1", "stop DAG")
    with pytest.raises(microbatch.StormError, match="its last run r1 is stopping"):
        microbatch.start_storm(control, "pol-03", 20, 2)
    with pytest.raises(ValueError, match="2 to 1000"):
        control.add_storm("r1", "pol-03", 1, 2)


def test_the_running_feed_takes_a_storm_on_its_page_and_drops_it_when_it_ends():
    from kinds.social.source import PageFeed

    feed = PageFeed(["pol-01", "pol-03"], seed=1)
    assert feed.rate_multiplier() == 1.0
    storm = {"page": "pol-03", "factor": 9, "from_ms": 1_000, "until_ms": 61_000}
    feed.control({"storms": [storm]}, now_ms=2_000)
    assert feed.rate_multiplier() == 5.0  # (1 + 9) / 2 pages
    events = feed.poll(1000)
    assert sum(e["page_id"] == "pol-03" for e in events) == 900  # the page's share, x9
    feed.control({"storms": [storm]}, now_ms=61_000)
    assert feed.rate_multiplier() == 1.0
    feed.control({"storms": [{**storm, "page": "pol-07"}]}, now_ms=2_000)  # not a page of this feed
    assert feed.rate_multiplier() == 1.0


def test_the_runner_reads_its_control_file_again_when_it_changes(tmp_path):
    from ingestors.runner import ControlFile
    from tormenta.providers.ingestor import IngestorOperator

    path = tmp_path / "x.control.json"
    control = ControlFile(str(path))
    assert control.read() == {}  # not written yet
    IngestorOperator.pass_on(str(path), [{"page": "pol-03"}])
    assert control.read() == {"storms": [{"page": "pol-03"}]}
    IngestorOperator.pass_on(str(path), [{"page": "pol-03"}, {"page": "pol-04"}])
    assert len(control.read()["storms"]) == 2
    assert ControlFile(None).read() == {}
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


def test_the_pulling_loop_follows_the_storm_rate(tmp_path):
    """run_pull asks the source for its rate again once the control file changed."""
    import threading

    from ingestors.runner import ControlFile, run_pull
    from kinds.social.source import PageFeed
    from tormenta.providers.ingestor import IngestorOperator

    feed = PageFeed(["pol-01", "pol-03"], seed=1, limit=50)
    path = tmp_path / "c.json"
    IngestorOperator.pass_on(str(path), [{"page": "pol-03", "factor": 3, "from_ms": 0, "until_ms": 2**62}])
    rates = []

    class Producer:
        stats = type("S", (), {"failed": 0})()

        def send(self, kind, e): ...

        def poll(self, t): ...

    def rate_of():
        rates.append(10 * len(feed.pages) * feed.rate_multiplier())
        return rates[-1]

    run_pull(feed, Producer(), 1000.0, threading.Event(), lambda: None, control=ControlFile(str(path)),
             rate_of=rate_of)  # fmt: skip
    assert rates and rates[0] == 40.0  # 10/s per page, pol-03 x3


def test_recovery_is_read_off_the_batches_after_the_storm():
    storm = {"page": "pol-03", "factor": 20, "from_ms": 10_000, "until_ms": 70_000}

    def batch(at, p50, read=100):
        return {"written_at": at, "latency_ms": {"p50": p50}, "read": read}

    results = [batch(5_000, 900), batch(40_000, 6_000, read=5_000), batch(72_000, 4_500), batch(75_000, 1_500),
               batch(80_000, 900)]  # fmt: skip
    got = recovery(results, storm, interval_s=1.0)
    assert got["peak_p50_ms"] == 6_000 and got["max_records_per_batch"] == 5_000
    assert got["recovered_s"] == 5.0 and got["bound_ms"] == 2_000  # 75 s: the first p50 under 2 s after 70 s
    assert recovery(results[:3], storm, 1.0)["recovered_s"] is None  # not back yet


def test_the_freshness_chart_shades_the_storm():
    svg = charts.freshness({"micro-batch": [(0, 1.0), (120_000, 2.0)]}, {"micro-batch": 0},
                           bands=[("micro-batch", "storm pol-03 x20", 30_000, 90_000)])  # fmt: skip
    xml.dom.minidom.parseString(svg)
    assert svg.count('class="band"') == 1 and "<title>storm pol-03 x20</title>" in svg
    assert json.dumps(charts.freshness({"batch": [(0, 1.0)]}, {"batch": 0}, bands=[("micro-batch", "s", 0, 1)])).count(
        "band") == 0  # a band of a series that is not drawn is left out


def test_the_comparison_page_lists_a_runs_storms_with_their_recovery():
    from tests.unit.test_compare import stats
    from tormenta import latency
    from tormenta.compare_page import render

    storm = {"page": "pol-03", "factor": 20, "from_ms": 1_200_000, "until_ms": 1_320_000, "peak_p50_ms": 6_000.0,
             "max_records_per_batch": 5_000, "recovered_s": 12.5, "bound_ms": 2_000}  # fmt: skip
    data = {"micro_batch": stats("micro-batch", storms=[storm, {**storm, "recovered_s": None}]), "batch": None,
            "agreement": {"status": "n/a", "why": "w"},
            "latency_buckets": [latency.label(i) for i in range(len(latency.EDGES_MS) + 1)]}  # fmt: skip
    html = render(data, {"micro_batch": [], "batch": []}, "", None, None)
    assert "<h2>Storms on demand (tormenta_storm)</h2>" in html
    assert '<td>pol-03 &times;20</td>' in html and '<td class="num">6,000 ms</td><td class="num">5,000</td>' in html
    assert '<td class="num">12.5 s</td>' in html and '<td class="num">not yet</td>' in html
    assert html.count('class="band"') == 2  # on the freshness chart
    assert "Storms on demand" not in render({**data, "micro_batch": stats("micro-batch")},
                                            {"micro_batch": [], "batch": []}, "", None, None)  # fmt: skip
