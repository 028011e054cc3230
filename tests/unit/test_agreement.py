"""The agree task's comparison (``tormenta.agreement`` + the kinds' ``agree.py``) on the in-memory
HBase: rows that agree, rows off by the window's edges only, and rows that really differ. The
same check against the real services: tests/e2e/test_pipelines.py (the batch DAG's agree task)."""

from __future__ import annotations

import json

import pytest

from tests.fakes import MemoryHBase
from tormenta import agreement, metrics, schema
from tormenta.contracts import batch_qualifier, event_row_key, query_name, row_key, table_name

START = 1_764_000_000_000 - 1_764_000_000_000 % 60_000
END = START + 120_000  # a two-minute window
LABEL = "w-test"


def minute(ms: int) -> str:
    from tormenta.contracts import minute_bucket

    return minute_bucket(ms)


class Paths:
    """Both namespaces as the jobs leave them: the micro-batch path writes one contribution per
    micro-batch and every event row; the batch window writes its m:<label> contribution."""

    def __init__(self) -> None:
        self.hbase = MemoryHBase()
        schema.ensure_tables(self.hbase, "micro")
        schema.ensure_tables(self.hbase, "win")
        self.n = 0

    def t(self, logical: str, ns: str):
        return self.hbase.table(table_name(logical, ns))

    def comment(self, t: int, page: str = "pol-01", author: str = "ana", *, batch: bool = True, mb: str = "b1") -> None:
        """One comment, stored by the micro-batch path (and by the window's batch if ``batch``)."""
        self.n += 1
        eid = f"c{self.n}"
        self.t("social_comments", "micro").put(event_row_key(eid), {b"d:event_time": str(t).encode(),
                                               b"d:page_id": page.encode(), b"d:author": author.encode()})  # fmt: skip
        self._add("social_minute", "micro", row_key(page, minute(t)), batch_qualifier(mb), minute_doc=True)
        if batch:
            self._add("social_minute", "win", row_key(page, minute(t)), batch_qualifier(LABEL), minute_doc=True)
            self._add("social_authors", "win", row_key(page, author), batch_qualifier(LABEL))
        self._add("social_authors", "micro", row_key(page, author), batch_qualifier(mb))

    def _add(self, logical, ns, row, column, minute_doc=False) -> None:
        table = self.t(logical, ns)
        old = table.row(row).get(column)
        if minute_doc:
            doc = json.loads(old) if old else {"comments": 0, "mentions": 0, "sentiment_sum": 0.0, "party": ""}
            doc["comments"] += 1
            doc["sentiment_sum"] = round(doc["sentiment_sum"] + 0.25, 9)
            table.put(row, {column: json.dumps(doc).encode()})
        else:
            table.put(row, {column: str(int(old or 0) + 1).encode()})

    def check(self) -> dict:
        return agreement.check(self.hbase, "micro", "win", START, END, LABEL)


def by_name(result: dict) -> dict[str, dict]:
    return {t["aggregate"]: t for t in result["aggregates"]}


def test_the_same_comments_on_both_paths_agree_row_by_row():
    p = Paths()
    for i in range(10):
        p.comment(START + 10_000 + i * 9_000, page=f"pol-0{i % 3}", author=f"a{i % 4}", mb=f"b{i % 2}")
    res = p.check()
    assert res["agree"] is True and res["differ"] == 0 and res["edge"] == 0
    t = by_name(res)
    assert t["social_minute"]["compared"] == 6 and t["social_minute"]["same"] == 6  # 3 pages x 2 minutes
    assert t["social_authors"]["compared"] == len({(f"pol-0{i % 3}", f"a{i % 4}") for i in range(10)})


def test_a_comment_the_batch_window_missed_at_its_end_is_an_edge_row_not_a_difference():
    p = Paths()
    p.comment(START + 30_000)
    p.comment(END - 1_000, batch=False)  # made before the end, sent after it: only the micro-batch has it
    res = p.check()
    t = by_name(res)
    assert res["agree"] is True
    assert t["social_minute"]["edge"] == 1 and t["social_authors"]["edge"] == 1
    assert t["social_minute"]["same"] == 1


def test_a_comment_missing_in_the_middle_of_the_window_is_a_difference_with_its_row():
    p = Paths()
    p.comment(START + 30_000)
    p.comment(START + 60_500, page="pol-09", batch=False)  # well inside the window: no excuse
    res = p.check()
    assert res["agree"] is False and res["differ"] == 2  # its minute row and its author row
    ex = by_name(res)["social_minute"]["examples"][0]
    assert ex["row"] == row_key("pol-09", minute(START + 60_500)).decode()
    assert ex["micro_batch"] == 1 and ex["batch"] == 0
    assert "DIFFER" in agreement.lines(res)[-1]


def test_a_wrong_sum_is_a_difference_even_when_the_counts_match():
    p = Paths()
    p.comment(START + 30_000)
    row = row_key("pol-01", minute(START + 30_000))
    table = p.t("social_minute", "win")
    doc = json.loads(table.row(row)[batch_qualifier(LABEL)])
    table.put(row, {batch_qualifier(LABEL): json.dumps({**doc, "sentiment_sum": 0.5}).encode()})
    res = p.check()
    assert by_name(res)["social_minute"]["differ"] == 1 and res["agree"] is False


def geo(p: Paths, trip: str, points: list[int], device: str = "dev-1", *, batch_points: int | None = None,
        distance: float = 100.0, batch_distance: float | None = None) -> None:
    for i, t in enumerate(points):
        p.t("geo_positions", "micro").put(event_row_key(f"{trip}-{i}"), {
            b"d:event_time": str(t).encode(), b"d:device_id": device.encode(), b"d:trip_id": trip.encode()})
    doc = {"distance_m": distance, "points": len(points), "max_speed_kmh": 50.0}
    p.t("geo_trips", "micro").put(trip.encode(), {b"m:b1": json.dumps(doc).encode()})
    inside = [t for t in points if START <= t < END]
    bdoc = {"distance_m": distance if batch_distance is None else batch_distance, "points": batch_points if batch_points is not None else len(inside),
            "max_speed_kmh": 50.0}
    p.t("geo_trips", "win").put(trip.encode(), {batch_qualifier(LABEL): json.dumps(bdoc).encode()})


def test_trips_wholly_inside_the_window_must_match_and_trips_across_its_start_are_edge_rows():
    p = Paths()
    geo(p, "t-inside", [START + 10_000, START + 20_000])
    geo(p, "t-across", [START - 30_000, START + 10_000], batch_distance=0.0)  # no position before it
    res = p.check()
    t = by_name(res)["geo_trips"]
    assert (t["compared"], t["same"], t["edge"], t["differ"]) == (2, 1, 1, 0)  # the distance differs: edge
    geo(p, "t-short", [START + 40_000, START + 50_000, START + 60_000], batch_points=2)
    geo(p, "t-long", [START + 40_000, START + 50_000], batch_distance=90.0)  # inside: must match
    t = by_name(p.check())["geo_trips"]
    assert t["differ"] == 2 and [x["row"] for x in t["examples"]] == ["t-long", "t-short"]


def test_zone_events_compare_as_sets_and_a_devices_first_position_is_an_edge():
    p = Paths()
    geo(p, "t1", [START + 10_000, START + 20_000, START + 30_000], device="dev-1")
    zone = lambda t, to: {b"d:from_zone": b"", b"d:to_zone": to, b"d:event_time": str(t).encode()}  # noqa: E731
    for ns in ("micro", "win"):
        p.t("geo_zone_events", ns).put(row_key("dev-1", f"{START + 20_000:013d}", "e2"), zone(START + 20_000, b"z1"))
    p.t("geo_zone_events", "micro").put(row_key("dev-1", f"{START + 10_000:013d}", "e1"), zone(START + 10_000, b"z0"))
    t = by_name(p.check())["geo_zone_events"]
    assert (t["compared"], t["same"], t["edge"], t["differ"]) == (2, 1, 1, 0)
    p.t("geo_zone_events", "win").put(row_key("dev-1", f"{START + 30_000:013d}", "e3"), zone(START + 30_000, b"z2"))
    t = by_name(p.check())["geo_zone_events"]
    assert t["differ"] == 1 and t["examples"][0] == {
        "row": row_key("dev-1", f"{START + 30_000:013d}", "e3").decode(), "micro_batch": None,
        "batch": {"d:from_zone": "", "d:to_zone": "z2"}}


def test_copies_of_events_stored_in_an_earlier_run_are_explained_by_history():
    """A page feed read again from its start (a new run): the micro-batch path drops the copies of
    comments it stored in the earlier run (duplicate_event_id), the window counts them."""
    p = Paths()
    for i in range(3):
        p.comment(START + 10_000 + i * 1_000)  # new comments, on both sides

    def copy_of(event_id: str, first_t: int, t: int, author: str = "ana") -> None:
        """The micro-batch path stored ``event_id`` at ``first_t``; its copy comes at ``t``: a dead
        letter there, a comment in the window."""
        p.t("social_comments", "micro").put(event_row_key(event_id), {b"d:event_time": str(first_t).encode(),
                                            b"d:page_id": b"pol-01", b"d:author": author.encode()})  # fmt: skip
        doc = {"schema": "social.comment", "v": 1, "event_id": event_id, "event_time": t, "page_id": "pol-01",
               "author": author}  # fmt: skip
        p.t("dead_letters", "micro").put(f"t|0000|{t:020d}".encode(), {
            b"d:reason": b"duplicate_event_id", b"d:value": json.dumps(doc).encode()})  # fmt: skip
        p._add("social_minute", "win", row_key("pol-01", minute(t)), batch_qualifier(LABEL), minute_doc=True)
        p._add("social_authors", "win", row_key("pol-01", author), batch_qualifier(LABEL))

    copy_of("old-1", START - 3_600_000, START + 20_000)
    copy_of("old-2", START - 3_600_000, START + 21_000, author="bea")
    res = p.check()
    t = by_name(res)
    assert res["agree"] is True and res["history"] == 3, agreement.lines(res)
    assert t["social_minute"]["history"] == 1  # pol-01's first minute: 3 stored, 5 in the window
    assert t["social_authors"]["history"] == 2  # ana: 3 against 4; bea: 0 against 1
    assert any("history" in line for line in agreement.lines(res))

    # A copy whose first one is inside the window explains nothing: the window saw the first one too.
    copy_of("new-1", START + 5_000, START + 22_000)
    res = p.check()
    assert res["agree"] is False and by_name(res)["social_minute"]["differ"] == 1


def test_nothing_in_the_window_is_nothing_to_compare():
    assert Paths().check()["agree"] is None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def store_batch(hbase, seq: int, read: int = 10) -> None:
    metrics.write_result(hbase, "micro", query_name("micro"), seq, {"label": f"b{seq}", "read": read})


@pytest.mark.parametrize("case", ["passed", "stalled", "never", "slow"])
def test_waiting_for_the_micro_batch_path_to_read_the_whole_window(case):
    p, clock, said = Paths(), Clock(), []
    seq = iter(range(1, 1000))
    if case != "never":
        store_batch(p.hbase, next(seq))
    left = {"n": 120}

    def sleep(s: float) -> None:
        clock.sleep(s)
        if case == "passed" and clock.now >= 20:
            left["n"] = 0
            store_batch(p.hbase, next(seq))
        if case == "slow":  # new batches keep coming, records of the window stay unread
            store_batch(p.hbase, next(seq))

    def unread(progress):
        assert progress["result"]["label"].startswith("b")  # the newest micro-batch's row
        return left["n"]

    why = agreement.caught_up(p.hbase, "micro", END, timeout_s=300, stall_s=60, unread=unread, say=said.append,
                              sleep=sleep, clock=clock)  # fmt: skip
    if case == "passed":
        assert why is None and clock.now == 20
    elif case == "slow":
        assert why.endswith("after 300s of waiting") and "has 120 records of the window" in why
    else:
        assert "stored nothing new for 60s: it is not running" in why
        assert ("stored no micro-batch" in why) == (case == "never")
    assert all("waiting" in s for s in said)
