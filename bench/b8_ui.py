"""B8: the time of the UI's two pages on a store with a long history: ``--b8-runs`` runs of each
pipeline (their metrics, records and agree checks) and ``--b8-events`` stored events, in a
namespace of its own on the running stack.

* **Live view**: ``GET /tormenta/live?ns=<bench namespace>`` through the running Airflow API
  server (login by bearer token), the whole round trip a browser waits for.
* **Comparison page**: ``tormenta.compare.compare`` + ``tormenta.compare_page.render`` for the
  newest runs, in this process on the same HBase (the page's run lists come from Airflow's
  metadata database, which holds none of the bench's runs; the HBase reads and the rendering are
  what grows with history).

Each run times ``--b8-samples`` views and reports their p50 and p95 (ms).
"""

from __future__ import annotations

import json
import statistics
import time
import urllib.request

from bench.common import Figure, Stopwatch, settings, tag

BATCHES_PER_RUN = 20
PAGES = 10
MINUTES = 1_440
DEVICES = 500
ZONE_EVENTS_PER_DEVICE = 20
DEAD = 10_000


def _hist(ms: float, n: int) -> list[int]:
    from tormenta import latency

    out = [0] * (len(latency.EDGES_MS) + 1)
    out[latency.histogram([ms]).index(1)] = n
    return out


def _result(run: int, seq: int, t0: int) -> dict:
    start = t0 + (run * BATCHES_PER_RUN + seq) * 1000
    return {"label": f"s{seq:013d}", "read": 1000, "good": 998, "dead": 2, "dead_by_reason": {"invalid_json": 2},
            "started_at": start, "written_at": start + 700, "min_event_time": start - 1500,
            "max_event_time": start - 200, "latency_ms": {"p50": 900.0}, "latency_hist": _hist(900, 998),
            "by_kind": {"social.comment": {"good": 998}}}  # fmt: skip


def fill(conn, ns: str, bns: str, runs: int, events: int, t0: int) -> dict[str, int]:
    """The bench namespaces: ``runs`` micro-batch runs of BATCHES_PER_RUN batches, ``runs`` batch
    run records with their agree checks, ``events`` stored comments, and the live view's tables."""
    from tormenta import metrics, reference, schema
    from tormenta.contracts import (
        dead_letter_row_key,
        event_row_key,
        minute_bucket,
        query_name,
        row_key,
        table_name,
    )
    from tormenta.hbase import put_rows

    reference.seed(conn, device_count=DEVICES, namespace=ns)
    schema.ensure_tables(conn, bns)
    t = lambda logical, n=ns: table_name(logical, n)  # noqa: E731
    counts: dict[str, int] = {}

    def metric_rows():
        seq = 0
        for r in range(runs):
            for b in range(BATCHES_PER_RUN):
                cells = {b"d:result": json.dumps(_result(r, b, t0)).encode()}
                yield metrics.row_key(query_name(ns), seq), cells, None
                yield metrics.run_row_key(f"bench-m{r:05d}", seq), cells, None
                seq += 1

    counts["metrics rows"] = put_rows(conn, t(metrics.TABLE), metric_rows())
    check = {"agree": True, "compared": 120, "same": 118, "edge": 2, "differ": 0, "edge_ms": 5000,
             "aggregates": [{"aggregate": "social_minute", "compared": 120, "same": 118, "edge": 2, "differ": 0,
                             "examples": []}]}  # fmt: skip

    def batch_rows():
        for r in range(runs):
            start = t0 + r * 3_600_000
            label = f"w{minute_bucket(start)}-{minute_bucket(start + 3_600_000)}"
            doc = {"mode": "batch", "run_id": f"bench-b{r:05d}", "window": {"label": label, "start_ms": start,
                   "end_ms": start + 3_600_000, "start": str(start), "end": str(start + 3_600_000)},
                   "read": 100_000, "good": 100_000, "dead": 0, "latency_ms": {"p50": 1_800_000.0},
                   "latency_hist": _hist(1_800_000, 100_000), "process_written_at": start + 3_700_000,
                   "max_event_time": start + 3_599_000, "process_seconds": 40}  # fmt: skip
            yield f"{label}|bench-b{r:05d}".encode(), {b"d:doc": json.dumps(doc).encode(),
                                                       b"d:agree": json.dumps(check).encode()}, None  # fmt: skip

    counts["batch run records"] = put_rows(conn, t("batch_runs", bns), batch_rows())

    def events_rows():
        for i in range(events):
            cells = {b"d:event_time": str(t0 + i).encode(), b"d:page_id": f"pol-{i % PAGES:02d}".encode(),
                     b"d:author": f"user{i % 997:04d}".encode(), b"d:text": b"el gobierno propuesta ley votar pueblo",
                     b"d:batch": b"s0000000000001"}  # fmt: skip
            yield event_row_key(f"bench-{i:012d}"), cells, 1

    counts["events"] = put_rows(conn, t("social_comments"), events_rows(), batch_size=5_000)
    now = int(time.time() * 1000)

    def minute_rows():
        for p in range(PAGES):
            for m in range(MINUTES):
                doc = {"comments": 10 + (m % 7) * (20 if p == 3 else 1), "mentions": 1, "sentiment_sum": 0.5}
                yield row_key(f"pol-{p:02d}", minute_bucket(now - m * 60_000)), {b"m:s0": json.dumps(doc).encode()}, None

    counts["social_minute rows"] = put_rows(conn, t("social_minute"), minute_rows())
    zones = reference.zones()

    def latest_rows():
        for d in range(DEVICES):
            z = zones[d % len(zones)]
            yield f"dev-{d:05d}".encode(), {b"d:lat": str((z.lat_min + z.lat_max) / 2).encode(),
                                           b"d:lon": str((z.lon_min + z.lon_max) / 2).encode(),
                                           b"d:zone": z.zone_id.encode(), b"d:event_time": str(now).encode(),
                                           b"d:speed_kmh": b"40"}, None  # fmt: skip

    counts["devices"] = put_rows(conn, t("geo_latest"), latest_rows())

    def zone_rows():
        for d in range(DEVICES):
            for k in range(ZONE_EVENTS_PER_DEVICE):
                when = now - k * 60_000
                yield row_key(f"dev-{d:05d}", f"{when:013d}", f"e{d}-{k}"), {
                    b"d:from_zone": b"madrid-00", b"d:to_zone": b"madrid-01", b"d:event_time": str(when).encode()}, None

    counts["zone events"] = put_rows(conn, t("geo_zone_events"), zone_rows())

    def dead_rows():
        for i in range(DEAD):
            yield dead_letter_row_key(f"{ns}.social.comments", i % 4, i), {
                b"d:reason": b"invalid_json", b"d:kafka_ts": str(now - i).encode(), b"d:value": b"{broken",
                b"d:value_bytes": b"7"}, None  # fmt: skip

    counts["dead letters"] = put_rows(conn, t("dead_letters"), dead_rows())
    return counts


def _percentiles(ms: list[float]) -> tuple[float, float]:
    ordered = sorted(ms)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def time_compare(endpoint, ns: str, bns: str, runs: int, samples: int, t0: int) -> list[float]:
    from tormenta.compare import RunInfo, compare
    from tormenta.compare_page import render

    last = runs - 1
    micro = RunInfo("tormenta_microbatch", f"bench-m{last:05d}", "success", t0, t0 + 10**9, {"namespace": ns})
    batch = RunInfo("tormenta_batch", f"bench-b{last:05d}", "success", t0, t0 + 10**9,
                    {"namespace": bns, "source_namespace": ns})  # fmt: skip
    out = []
    with endpoint.session() as conn:
        for _ in range(samples):
            with Stopwatch() as sw:
                data = compare(conn, micro, batch)
                html = render(data, {"micro_batch": [], "batch": []}, "", micro.run_id, batch.run_id)
            assert data["batch"]["agree_check"]["agree"] is True and "<svg" in html
            out.append(sw.seconds * 1000)
    return out


def time_live(ns: str, samples: int) -> list[float]:
    from tormenta.airflow_api import local_client

    s = settings()
    token = local_client("admin").token()
    out = []
    for _ in range(samples):
        req = urllib.request.Request(f"{s.airflow_url}/tormenta/live?ns={ns}", headers={"Authorization": f"Bearer {token}"})
        with Stopwatch() as sw, urllib.request.urlopen(req, timeout=60) as resp:
            body = resp.read().decode()
        assert resp.status == 200 and body.count('class="device"') == DEVICES, body[:500]
        out.append(sw.seconds * 1000)
    return out


def run(runs: int, history_runs: int, events: int, samples: int) -> list[Figure]:
    from tormenta.hbase import HBaseEndpoint
    from tormenta.schema import drop_namespace

    s = settings()
    endpoint = HBaseEndpoint(s.bind_host, s.thrift_port, timeout_ms=120_000)
    ns = "bui" + tag()
    bns = ns + "b"
    t0 = 1_790_000_000_000
    with endpoint.session() as conn, Stopwatch() as sw:
        counts = fill(conn, ns, bns, history_runs, events, t0)
    print(f"[B8] filled {ns}: {counts} in {sw.seconds:.0f} s", flush=True)
    figs = {k: Figure("B8", f"{what} ({history_runs:,} runs, {events:,} events), {samples} views", "ms",
                      target="p95 <= 300 ms" if k.endswith("p95") else "")
            for k, what in (("live p50", "live view p50, HTTP via API server"),
                            ("live p95", "live view p95, HTTP via API server"),
                            ("compare p50", "comparison page p50, HBase reads + render"),
                            ("compare p95", "comparison page p95, HBase reads + render"))}  # fmt: skip
    try:
        for i in range(runs):
            p50, p95 = _percentiles(time_live(ns, samples))
            figs["live p50"].values.append(p50)
            figs["live p95"].values.append(p95)
            c50, c95 = _percentiles(time_compare(endpoint, ns, bns, history_runs, samples, t0))
            figs["compare p50"].values.append(c50)
            figs["compare p95"].values.append(c95)
            print(f"[B8] run {i + 1}: live p50 {p50:.0f} ms p95 {p95:.0f} ms; compare p50 {c50:.0f} ms p95 {c95:.0f} ms",
                  flush=True)  # fmt: skip
    finally:
        with endpoint.session() as conn:
            drop_namespace(conn, ns)
            drop_namespace(conn, bns)
    return list(figs.values())
