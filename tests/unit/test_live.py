"""The live view (``tormenta.live`` + ``tormenta.live_page``) on the in-memory HBase: what it reads,
that every read is bounded, and what a person sees. In a browser on the running stack:
tests/e2e/test_live_view.py."""

from __future__ import annotations

import json
import re
import xml.dom.minidom

import pytest

from tests.fakes import MemoryHBase
from tormenta import live, reference
from tormenta.contracts import dead_letter_row_key, minute_bucket, row_key, table_name
from tormenta.live_page import fragment, render

pytestmark = pytest.mark.unit

NOW = 1_795_000_000_000 - 1_795_000_000_000 % 60_000 + 30_000  # half past a minute


def store(extra_history: int = 0) -> MemoryHBase:
    hbase = MemoryHBase()
    reference.seed(hbase, device_count=10, namespace="lv")
    t = lambda logical: hbase.table(table_name(logical, "lv"))  # noqa: E731
    madrid = next(z for z in reference.zones() if z.zone_id == "madrid-11")
    for i in range(6):
        lat, lon = (madrid.lat_min + madrid.lat_max) / 2, (madrid.lon_min + madrid.lon_max) / 2 + i * 1e-3
        t("geo_latest").put(f"dev-{i:05d}".encode(), {b"d:lat": str(lat).encode(), b"d:lon": str(lon).encode(),
                            b"d:zone": b"madrid-11" if i else b"", b"d:event_time": str(NOW - i * 1000).encode(),
                            b"d:speed_kmh": b"30"})  # fmt: skip
        for k, when in enumerate((NOW - 60_000 - i, NOW - 5_000 - i)):  # two zone events each: the newest shows
            t("geo_zone_events").put(row_key(f"dev-{i:05d}", f"{when:013d}", f"e{i}{k}"),
                                     {b"d:from_zone": b"" if k else b"madrid-10", b"d:to_zone": b"madrid-11"})  # fmt: skip
    doc = lambda n: json.dumps({"comments": n, "mentions": 0, "sentiment_sum": 0.0}).encode()  # noqa: E731
    t("social_minute").put(row_key("pol-03", minute_bucket(NOW)), {b"m:b1": doc(40), b"m:b2": doc(2)})  # a storm
    t("social_minute").put(row_key("pol-01", minute_bucket(NOW - 120_000)), {b"m:b1": doc(3)})
    for h in range(extra_history):  # older minutes: outside the view's rows
        t("social_minute").put(row_key("pol-01", minute_bucket(NOW - (40 + h) * 60_000)), {b"m:b0": doc(1)})
    for off in range(8):
        t("dead_letters").put(dead_letter_row_key("lv.social.comments", 1, off),
                              {b"d:reason": b"invalid_json", b"d:kafka_ts": str(NOW - 1000 + off).encode(),
                               b"d:value": b"{not json" + b"x" * 500, b"d:value_bytes": b"509"})  # fmt: skip
    return hbase


def test_the_view_reads_positions_newest_zone_events_comments_per_minute_and_dead_letters():
    data = live.snapshot(store(), "lv", NOW)
    assert data["missing"] == []
    assert len(data["devices"]) == 6 and {d["zone"] for d in data["devices"]} == {"", "madrid-11"}
    assert len(data["zones"]) == 18
    assert len(data["zone_events"]) == 6  # the newest per phone, newest first
    assert all(e["from_zone"] == "" for e in data["zone_events"])
    assert data["zone_events"][0]["device_id"] == "dev-00000"
    assert data["comments"]["pol-03"] == {minute_bucket(NOW): 42}
    assert data["comments"]["pol-01"] == {minute_bucket(NOW - 120_000): 3}
    assert data["politicians"]["pol-03"] == "Jorge Rey" and len(data["minutes"]) == live.MINUTES
    assert [d["offset"] for d in data["dead"]] == [7, 6, 5, 4, 3]  # DEAD_PER_PARTITION newest of the partition
    assert len(data["dead"][0]["value"]) == live.VALUE_PREVIEW


def test_every_read_is_bounded_so_history_does_not_make_a_view_dearer():
    small = live.snapshot(store(), "lv", NOW)["reads"]
    large = live.snapshot(store(extra_history=2_000), "lv", NOW)["reads"]
    assert small == large  # the same scans and rows with 2,000 more minutes stored


def test_a_namespace_without_tables_says_so():
    data = live.snapshot(MemoryHBase(), "none", NOW)
    assert data["missing"] == ["none_geo_latest", "none_social_minute", "none_dead_letters"]
    html = fragment(data)
    assert "table none_geo_latest does not exist" in html and "No phone position stored" in html


def test_the_page_draws_the_phones_on_the_city_maps_and_the_storm_in_the_heatmap():
    data = live.snapshot(store(), "lv", NOW)
    html = render(data, ["lv", "tormenta"], 3.0)
    for svg in re.findall(r"<svg.*?</svg>", html, flags=re.S):
        xml.dom.minidom.parseString(svg)  # well-formed
    assert html.count('class="device"') == 6
    assert "madrid: 6 phones at their latest position" in html and "bogota: 0 phones" in html
    assert "madrid-11 (5)" in html  # five phones inside the zone, one outside every zone
    assert "pol-03 " in html and "42 comments</title>" in html and "darkest: 42 comments in a minute" in html
    assert "outside &rarr; madrid-11" in html
    assert "invalid_json" in html and "{not json" in html
    assert 'fetch("live/fragment?ns=lv"' in html and "setTimeout(tick, every)" in html
    assert "<option selected>lv</option>" in html
