"""The run note a failed task writes: its reason first, bounded, one line per failure."""

from __future__ import annotations

import pytest

from tormenta.alerts import NOTE_LIMIT, merged_note, note_line, reason_of

pytestmark = pytest.mark.unit


def test_the_reason_is_the_failure_s_first_line():
    exc = RuntimeError("offsets are gone from Kafka (spark-submit exit 78; not retried)\nTraceback ...\n  at org.apache")
    assert reason_of(exc) == "offsets are gone from Kafka (spark-submit exit 78; not retried)"
    assert reason_of(ValueError()) == "ValueError"
    assert reason_of(None).startswith("no exception recorded")
    assert len(reason_of("x" * 5000)) <= 400


def test_a_line_names_the_task_its_map_index_and_try():
    assert note_line("stream", -1, 1, "boom") == "stream failed (try 1): boom"
    assert note_line("ingest", 2, 3, "boom") == "ingest[2] failed (try 3): boom"


def test_lines_are_added_once_and_the_oldest_go_when_the_note_is_full():
    note = merged_note(None, "a failed (try 1): x")
    assert merged_note(note, "a failed (try 1): x") == note
    note = merged_note("user wrote this", "a failed (try 1): x")
    assert note == "user wrote this\na failed (try 1): x"
    for i in range(100):
        note = merged_note(note, f"t{i} failed (try 1): " + "y" * 50)
    assert len(note) <= NOTE_LIMIT
    assert note.endswith("t99 failed (try 1): " + "y" * 50) and "user wrote this" not in note
