"""Failures that a retry cannot fix, told apart from the ones it can.

A streaming task is retried for a long time (50 tries with backoff) because most of its failures
pass: a broker or region server restarting. Some never pass, and retrying them only hides them
for an hour and a half. The jobs exit with ``EXIT_FATAL`` and a ``FATAL:`` line for those; the
operators turn that exit into a task failure without retries, with the reason in the error.
"""

from __future__ import annotations

import re

EXIT_USAGE = 2  # argparse
EXIT_FATAL = 78  # sysexits' EX_CONFIG: the job cannot run as asked
NOT_RETRIED = {EXIT_USAGE: "bad command line", EXIT_FATAL: "cannot run as asked"}
FATAL_PREFIX = "FATAL:"
EXIT_STOPPED = 143  # 128 + SIGTERM: stopped on request without draining (the task was killed)
# A driver told to stop now (SIGTERM, or the process that started it is gone) has ended within
# this many seconds, whatever hangs: its query stops at once, and a last-resort timer ends the
# JVM and the Python driver if the stop itself does not return.
STOP_NOW_BOUND_S = 20.0

# (pattern in the failure's text, what it means and what to do)
DETERMINISTIC: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"KAFKA_DATA_LOSS|failOnDataLoss|some data may have been lost", re.I),
     "offsets this query's checkpoint needs are gone from Kafka (aged out by retention, or the topic "
     "was deleted), so the query would skip events. Nothing was skipped. Either restore the data, or "
     "accept the loss explicitly by starting a new query version (Param query_version) from the "
     "earliest offsets still in Kafka."),
    (re.compile(r"ExpectationFailed|\(action fail\) not met", re.I),
     "a record did not meet an expectation whose action is fail (see the record named above): the same "
     "batch would fail again. Fix the data at its source, or change the expectation's action in its "
     "kind's contract.py, then start the pipeline again."),
]  # fmt: skip


def deterministic(text: str) -> str | None:
    """What a failure's text means when no retry can fix it; None when a retry may."""
    for pattern, meaning in DETERMINISTIC:
        if pattern.search(text):
            return meaning
    return None


def fatal_line(lines) -> str | None:
    """The job's own ``FATAL:`` line in its output, if any (the reason a task shows)."""
    found = None
    for line in lines:
        if FATAL_PREFIX in line:
            found = line[line.index(FATAL_PREFIX):].strip()
    return found
