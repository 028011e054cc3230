"""Batch window resolution, the generated source file, feed resume, ingestor commands."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from kinds.social.source import write_window_file
from tormenta import batch

pytestmark = pytest.mark.unit

RUN = dt.datetime(2026, 11, 26, 1, 0, 5, tzinfo=dt.UTC)


def test_default_window_is_the_previous_utc_day():
    w = batch.resolve_window("", "", RUN)
    assert w.as_dict()["start"] == "2026-11-25T00:00:00+00:00"
    assert w.as_dict()["end"] == "2026-11-26T00:00:00+00:00"
    assert w.label == "w202611250000-202611260000"
    assert w.seq == w.start_ms


def test_explicit_window_and_label():
    w = batch.resolve_window("2026-11-26T14:00Z", "2026-11-26T15:30+00:00", RUN)
    assert w.label == "w202611261400-202611261530"
    assert w.end_ms - w.start_ms == 90 * 60 * 1000


@pytest.mark.parametrize("start,end,match", [
    ("2026-11-26T14:00Z", "", "both"), ("2026-11-26T15:00Z", "2026-11-26T14:00Z", "not after"),
    ("2026-11-26T14:00:30Z", "2026-11-26T15:00Z", "whole minutes"), ("2026-01-01T00:00Z", "2026-03-01T00:00Z", "longer"),
])  # fmt: skip
def test_bad_windows(start, end, match):
    with pytest.raises(ValueError, match=match):
        batch.resolve_window(start, end, RUN)


def test_window_param_pattern_refuses_hostile_text():
    ok = ["", "2026-11-26T14:00Z", "2026-11-26T14:00:00+01:00"]
    bad = ["2026-11-26T14:00Z; ls", "../../etc/passwd", "$(id)", "2026-11-26 14:00"]
    assert all(re.fullmatch(batch.ISO_MINUTE_PATTERN, t) for t in ok)
    assert not any(re.fullmatch(batch.ISO_MINUTE_PATTERN, t) for t in bad)


def test_generated_source_file_is_deterministic_and_inside_the_window(tmp_path):
    w = batch.resolve_window("2026-11-26T14:00Z", "2026-11-26T15:00Z", RUN)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert write_window_file(str(a), w, 500, "tormenta") == 500
    write_window_file(str(b), w, 500, "tormenta")
    assert a.read_bytes() == b.read_bytes()
    rows = [json.loads(line) for line in a.read_text().splitlines()]
    assert all(w.start_ms <= r["timestamp"] < w.end_ms for r in rows)
    assert len({json.loads(r["value"])["event_id"] for r in rows}) == 500
    other = tmp_path / "other.jsonl"  # another window's file: other comments, not duplicates
    write_window_file(str(other), batch.resolve_window("2026-11-26T15:00Z", "2026-11-26T16:00Z", RUN), 500, "tormenta")
    ids = {json.loads(r["value"])["event_id"] for r in rows}
    assert not ids & {json.loads(json.loads(line)["value"])["event_id"] for line in other.read_text().splitlines()}
    per_partition: dict[int, list[int]] = {}
    for r in rows:
        per_partition.setdefault(r["partition"], []).append(r["offset"])
    assert all(offsets == list(range(len(offsets))) for offsets in per_partition.values())


def test_paths_stay_inside_home(tmp_path):
    w = batch.resolve_window("", "", RUN)
    for path in batch.paths(tmp_path, w, "manual__2026-11-26T01:00:00+00:00/../../x").values():
        assert str(path).startswith(str(tmp_path)) and "/../" not in path


def test_feed_position_resumes_exactly(tmp_path):
    from kinds.social.source import PageFeed

    full = PageFeed(["pol-01", "pol-02"], shard=1, shards=2)
    first = [e["event_id"] for e in full.poll(30)]
    rest = [e["event_id"] for e in full.poll(30)]
    a = PageFeed(["pol-01", "pol-02"], shard=1, shards=2)
    a.poll(30)
    b = PageFeed(["pol-01", "pol-02"], shard=1, shards=2)
    b.seek(json.loads(json.dumps(a.position())))
    assert [e["event_id"] for e in b.poll(30)] == rest
    assert not set(first) & set(rest)


def test_feed_position_of_other_params_resumes_without_holes():
    """Pages moved between ingestors and a new shard count: each page resumes where it was (on
    its shard), a new page starts at 0, and no comment after the saved position is skipped."""
    from kinds.social.source import PageFeed

    def ns(events):
        return {(e["page_id"], int(e["event_id"].rsplit("-c", 1)[1])) for e in events}

    old = PageFeed(["pol-01", "pol-02"], shard=0, shards=1)
    sent = ns(old.poll(41))
    feeds = [PageFeed(["pol-01", "pol-02", "pol-03"], shard=s, shards=2) for s in (0, 1)]
    notes = [f.seek(json.loads(json.dumps(old.position()))) for f in feeds]
    assert any("pol-03: no saved position" in n for n in notes[0])
    for f in feeds:
        sent |= ns(f.poll(300))
    for page in ("pol-01", "pol-02", "pol-03"):
        got = sorted(n for p, n in sent if p == page)
        assert got == list(range(len(got))) and len(got) > 60, page  # contiguous from 0: no hole
    assert PageFeed(["pol-01"]).seek(old.position()) == ["no longer read by this feed: pol-02"]


class FakeProducer:
    def __init__(self, pending=0, failed=0):
        from ingestors.producer import DeliveryStats

        self.pending, self.stats = pending, DeliveryStats(failed=failed)

    def flush(self, timeout):
        return self.pending


def test_feed_checkpoint_saves_only_acknowledged_positions(tmp_path):
    from ingestors.runner import FeedCheckpoint
    from kinds.social.source import PageFeed

    path = tmp_path / "state" / "f.json"
    feed = PageFeed(["pol-01"])
    feed.poll(10)
    FeedCheckpoint(str(path), feed, FakeProducer(pending=3)).maybe_save(force=True)
    assert not path.exists()  # records still in flight: no position saved
    FeedCheckpoint(str(path), feed, FakeProducer(failed=1)).maybe_save(force=True)
    assert not path.exists()  # a rejected record: never skip past it
    FeedCheckpoint(str(path), feed, FakeProducer()).maybe_save(force=True)
    assert json.loads(path.read_text())["next_n"] == {"pol-01": 10}
    resumed = PageFeed(["pol-01"])
    FeedCheckpoint(str(path), resumed, FakeProducer())
    assert resumed.poll(1)[0]["event_id"] == "pol-01-c000000000010"


def test_ingestor_operator_builds_an_argument_list_and_refuses_other_modules():
    from tormenta.providers.ingestor import IngestorError, IngestorOperator

    spec = {"name": "social-pages-1", "module": "ingestors.runner", "argv": ["social", "--pages", "pol-01"],
            "pulls": True}  # fmt: skip
    op = IngestorOperator(task_id="t", spec=spec)
    cmd = op.command("127.0.0.1:9092", "/state")
    assert cmd[1:] == ["-m", "ingestors.runner", "social", "--pages", "pol-01", "--bootstrap", "127.0.0.1:9092",
                       "--name", "social-pages-1", "--control-file", "/state/social-pages-1.control.json",
                       "--state-file", "/state/social-pages-1.json"]  # fmt: skip
    with pytest.raises(IngestorError, match="not an ingestor"):
        IngestorOperator(task_id="t2", spec={**spec, "module": "os"}).command("b", "/s")
    with pytest.raises(IngestorError, match="bad ingestor name"):
        IngestorOperator(task_id="t3", spec={**spec, "name": "../x"}).command("b", "/s")


def test_the_demo_window_starts_at_the_first_minute_with_social_comments_since_the_run_started():
    from tests.fakes import MemoryHBase
    from tormenta import schema
    from tormenta.contracts import row_key, table_name

    hbase = MemoryHBase()
    schema.ensure_tables(hbase, "tormenta")
    minute = lambda hhmm: int(dt.datetime(2026, 11, 28, *hhmm, tzinfo=dt.UTC).timestamp() * 1000)  # noqa: E731
    since = minute((10, 5))
    assert batch.first_social_minute(hbase, "tormenta", since) is None  # nothing stored yet
    table = hbase.table(table_name("social_minute", "tormenta"))
    doc = json.dumps({"comments": 1, "mentions": 0, "sentiment_sum": 0.0}).encode()
    table.put(row_key("pol-01", "202611281003"), {b"m:b1": doc})  # an earlier run's minute
    assert batch.first_social_minute(hbase, "tormenta", since) is None
    table.put(row_key("pol-02", "202611281007"), {b"m:b2": doc})
    table.put(row_key("pol-01", "202611281006"), {b"m:b2": doc})
    assert batch.first_social_minute(hbase, "tormenta", since) == minute((10, 6))
    table.put(row_key("pol%|7", "202611281005"), {b"m:b3": doc})  # the run's own first minute counts
    assert batch.first_social_minute(hbase, "tormenta", since) == since
