"""Storm on demand, through the Airflow REST API on a running pipeline: ``tormenta_storm`` multiplies
one page's rate without a restart; batches stay within max records; every event acknowledged by
the ingestors is stored once; the comparison page's numbers say when latency came back."""

from __future__ import annotations

import collections
import urllib.parse

import pytest

from tests.e2e.story import MB, STOP, own_namespace, wait_until
from tormenta.microbatch import STORM_DAG_ID

pytestmark = pytest.mark.e2e

MAX_RECORDS = 200


def test_a_storm_on_a_running_pipeline_is_bounded_exact_and_recovers(admin, stack, request):
    from tormenta.control import ControlPlane
    from tormenta.hbase import HBaseEndpoint

    ns, fresh = own_namespace(stack, request, "storm")
    admin.wait_for_dag(STORM_DAG_ID)
    admin.set_paused(STORM_DAG_ID, False)
    conf = {"namespace": ns, "interval": "PT1S", "sources": ["social"], "hot_pages": [], "ingestors_other_pages": 1,
            "rate_per_page": 5, "max_records_per_batch": MAX_RECORDS}  # fmt: skip
    run = admin.trigger(MB, conf=conf)["dag_run_id"]
    table = f"{ns}_social_comments"
    try:
        wait_until("first events in HBase", lambda: fresh.count(table) > 0, timeout=360)
        storm_run = admin.trigger(STORM_DAG_ID, conf={"namespace": ns, "page": "pol-03", "factor": 50,
                                                      "minutes": 1})["dag_run_id"]  # fmt: skip
        assert admin.wait_for_run(STORM_DAG_ID, storm_run, timeout=300)["state"] == "success"
        query = urllib.parse.urlencode({"micro": run})

        def recovered():
            storms = admin.request("GET", f"/tormenta/api/compare?{query}")["micro_batch"]["storms"]
            return storms and storms[0]["recovered_s"] is not None and storms[0]

        storm = wait_until("latency back under twice the interval", recovered, timeout=600, every=5)
    finally:
        stop = admin.trigger(STOP, conf={"namespace": ns})["dag_run_id"]
        admin.wait_for_run(STOP, stop, timeout=900)
    assert admin.wait_for_run(MB, run, timeout=300)["state"] == "success"
    print(f"storm: {storm}")
    shown_on_the_comparison_page(stack, run)

    state = ControlPlane(HBaseEndpoint(stack.bind_host, stack.thrift_port), ns).state(run)
    acked = sum(doc["report"]["acked"] for name, doc in state["stopped"].items() if name.startswith("social"))
    with fresh.endpoint.session() as conn:
        pages = collections.Counter(cells[b"d:page_id"].decode()
                                    for _, cells in conn.table(table).scan(columns=[b"d:page_id"]))  # fmt: skip
    assert sum(pages.values()) == acked  # every acknowledged event stored, once
    # the storm: pol-03 at 50x its 5/s for a minute, ~14,700 comments more than a calm page
    assert pages["pol-03"] - pages["pol-01"] > 0.7 * 49 * 5 * 60, pages
    assert storm["max_records_per_batch"] <= MAX_RECORDS  # bounded batches through the backlog
    assert storm["peak_p50_ms"] > storm["bound_ms"], storm  # the storm did build a backlog ...
    assert storm["recovered_s"] >= 0  # ... and the run came back from it


def shown_on_the_comparison_page(stack, run: str) -> None:
    """What a user sees: the freshness chart with the storm's band, and the storms table with the time it took to recover (headless Chromium, as viewer)."""
    import json

    from tests.e2e.browser import logged_in, shoot
    from tormenta.stack.airflow_setup import passwords_file

    viewer = json.loads(passwords_file(stack).read_text())["viewer"]
    with logged_in(stack.airflow_url, "viewer", viewer, height=1600) as page:
        page.goto(f"{stack.airflow_url}/tormenta/compare?{urllib.parse.urlencode({'micro': run})}")
        page.get_by_text("Storms on demand (tormenta_storm)").wait_for(timeout=60_000)
        bands = page.locator("svg text", has_text="storm pol-03 x50")
        assert bands.count() == 1, bands.count()  # the storm's band on the freshness chart (time on its x axis)
        row = page.locator("tr", has_text="pol-03 ×50")
        assert row.count() == 1 and row.locator("td").last.inner_text().endswith(" s")  # recovered after N s
        page.locator("h2", has_text="Storms on demand").scroll_into_view_if_needed()
        shoot(page, "compare-storm")
