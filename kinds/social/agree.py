"""How the two paths' social aggregates compare over a batch window (``tormenta.agreement``).

* ``social_minute``: per page and minute inside the window, comments, mentions and sentiment
  summed over every micro-batch against the window's own contribution;
* ``social_authors``: per page and author, the micro-batch's stored comments with an event time
  in the window (the authors table sums a whole run) against the window's contribution.

A row short on the micro-batch side by exactly the comments it dropped as stored in an earlier
run (``Scope.history``: a page feed read again from its start) is explained by history.
"""

from __future__ import annotations

import json
from collections import Counter

from tormenta.agreement import Scope, Tally, close, counted, minute_of, near_counts, sum_docs
from tormenta.contracts import minute_bucket, row_key

from .contract import KIND

FIELDS = ("comments", "mentions", "sentiment_sum")


def checks(scope: Scope) -> list[Tally]:
    lo, hi = minute_bucket(scope.start_ms), minute_bucket(scope.end_ms)
    in_window = lambda row: lo <= minute_of(row) < hi  # noqa: E731
    events = scope.micro_events(KIND.events_table, ("page_id", "author"))
    again = [e for e in scope.history(KIND) if scope.inside(e["event_time"])]

    minutes = Tally("social_minute")
    micro = {row: sum_docs(values, FIELDS) for row, values in scope.micro_totals("social_minute", in_window).items()}
    batch = {row: sum_docs([value], FIELDS) for row, value in scope.batch_cells("social_minute", in_window).items()}
    slack = near_counts(scope, events, lambda e: row_key(e["page_id"], minute_bucket(e["event_time"])).decode())
    history = Counter(row_key(e["page_id"], minute_bucket(e["event_time"])).decode() for e in again)
    zero = dict.fromkeys(FIELDS, 0)
    for row in sorted(set(micro) | set(batch)):
        m, b = micro.get(row, zero), batch.get(row, zero)
        counted(row, minutes, int(m["comments"]), int(b["comments"]), slack[row],
                same=all(close(m[f], b[f]) for f in FIELDS), history=history[row])  # fmt: skip

    authors = Tally("social_authors")
    micro_n = Counter(row_key(e["page_id"], e["author"]).decode() for e in events if scope.inside(e["event_time"]))
    batch_n = {row: int(json.loads(value)) for row, value in scope.batch_cells("social_authors").items()}
    slack = near_counts(scope, events, lambda e: row_key(e["page_id"], e["author"]).decode())
    history = Counter(row_key(e["page_id"], e["author"]).decode() for e in again)
    for row in sorted(set(micro_n) | set(batch_n)):
        counted(row, authors, micro_n.get(row, 0), batch_n.get(row, 0), slack[row], history=history[row])
    return [minutes, authors]
