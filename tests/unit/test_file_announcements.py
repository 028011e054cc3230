"""A batch that starts when its file lands: the announcement a source client sends, what the
batch trusts in it, and which file a run processes (the run against the real services:
tests/e2e/test_file_announcement.py)."""

from __future__ import annotations

import json

import pytest

from tormenta import batch

pytestmark = pytest.mark.unit

START = "2026-11-28T10:00Z"
END = "2026-11-28T10:05Z"


def big_file(home, name="f.jsonl", text="x\n") -> dict:
    path = batch.incoming_dir(home) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    w = batch.resolve_window(START, END, None)
    return batch.file_announcement(path, w, 1, "tormenta")


def test_an_announcement_says_where_which_window_how_big_and_the_files_sha256(tmp_path):
    import hashlib

    doc = big_file(tmp_path, text="one record\n")
    assert doc["id"] == hashlib.sha256(b"one record\n").hexdigest() and doc["bytes"] == 11
    parsed = batch.parse_announcement(json.dumps(doc), tmp_path)
    assert parsed["window"]["label"] == "w202611281000-202611281005"
    assert parsed["file"] == str((batch.incoming_dir(tmp_path) / "f.jsonl").resolve())


@pytest.mark.parametrize("change, error", [
    (lambda d: "not json", "not JSON"),
    (lambda d: [d], "not a JSON object"),
    (lambda d: {k: v for k, v in d.items() if k != "bytes"}, "lacks bytes"),
    (lambda d: {**d, "id": "abc"}, "not a sha256"),
    (lambda d: {**d, "file": "/etc/passwd"}, "is not inside"),
    (lambda d: {**d, "file": d["file"] + "/../../../secret"}, "is not inside"),
    (lambda d: {**d, "file": d["file"] + ".gone"}, "does not exist"),
    (lambda d: {**d, "bytes": 1}, "the announcement says 1"),
    (lambda d: {**d, "window_end": d["window_start"]}, "is not after its start"),
    (lambda d: {**d, "source_namespace": "x;ls"}, "is not a namespace"),
])  # fmt: skip
def test_the_batch_refuses_announcements_it_cannot_trust(tmp_path, change, error):
    doc = big_file(tmp_path)
    payload = change(doc)
    with pytest.raises(ValueError, match=error):
        batch.parse_announcement(payload if isinstance(payload, str) else json.dumps(payload), tmp_path)


def test_a_run_takes_the_first_new_file_and_passes_the_others_on(tmp_path):
    a, b, c = (big_file(tmp_path, f"{n}.jsonl", f"{n}\n") for n in "abc")
    done = {c["id"]: "run-1"}
    payloads = [json.dumps(a), json.dumps(a), "garbage", json.dumps(c), json.dumps(b)]
    pick = batch.pick_announced(payloads, tmp_path, done.get)
    assert pick.file["id"] == a["id"]
    assert pick.later == [b]  # as announced, for a run of its own
    assert pick.done == [f"{batch.parse_announcement(json.dumps(c), tmp_path)['file']} by run run-1"]
    assert len(pick.refused) == 1 and "not JSON" in pick.refused[0]
    again = batch.pick_announced([json.dumps(c)], tmp_path, done.get)
    assert again.file is None and again.later == [] and again.done


def test_the_processed_files_ledger_sits_in_the_batch_runs_table():
    from tests.fakes import MemoryHBase
    from tormenta import schema

    hbase = MemoryHBase()
    assert batch.processed_by(hbase, "tb", "ab" * 32) is None  # no table yet: nothing processed
    schema.ensure_tables(hbase, "tb")
    assert batch.processed_by(hbase, "tb", "ab" * 32) is None
    batch.mark_processed(hbase, "tb", "ab" * 32, "asset_triggered__x", "/f")
    assert batch.processed_by(hbase, "tb", "ab" * 32) == "asset_triggered__x"


def test_the_trigger_serializes_to_itself_and_wraps_the_providers_kafka_trigger():
    from tormenta.providers.announcements import AnnouncementTrigger

    t = AnnouncementTrigger([batch.FILES_TOPIC], batch.FILES_CONN_ID)
    path, kwargs = t.serialize()
    assert path == "tormenta.providers.announcements.AnnouncementTrigger"
    again = AnnouncementTrigger(**kwargs)
    inner = again._inner()
    assert inner.topics == [batch.FILES_TOPIC] and inner.kafka_config_id == batch.FILES_CONN_ID
    assert inner.commit_offset  # the group moves past each announcement it turned into an event


def test_the_batch_dag_runs_on_its_cron_and_on_the_announced_file_asset():
    import runpy

    from tormenta.settings import REPO_ROOT

    ns = runpy.run_path(str(REPO_ROOT / "dags" / "tormenta_batch.py"))
    timetable = ns["SCHEDULE"]
    assert timetable.timetable.expression == "0 1 * * *" and str(timetable.timetable.timezone) == "UTC"
    asset = ns["FILE_ANNOUNCED"]
    assert asset.name == batch.FILE_ASSET and asset.watchers[0].trigger.topics == [batch.FILES_TOPIC]
