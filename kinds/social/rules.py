"""Social-comment business rules: Spark SQL for the jobs, plain Python as the reference model.

Per comment: ``mentions`` (number of @handles in the text) and ``sentiment`` in [-1, 1] from a
small Spanish/English keyword lexicon: (positive - negative) / max(1, positive + negative).
Per politician and minute, and per politician and author, the pipeline sums these up.

:func:`mutations` is what the micro-batch and the batch window run (DataFrame in, HBase mutations
out, no Python per row); :func:`sentiment_of` / :func:`add_comment_features` are the same rules
one comment at a time, which the tests hold the SQL to.
"""

from __future__ import annotations

import re
from typing import Any

from tormenta.contracts import minute_bucket

POSITIVE = frozenset({
    "bueno", "buena", "excelente", "gracias", "apoyo", "bien", "honesto", "honesta", "genial",
    "mejor", "bravo", "felicidades", "good", "great", "excellent", "thanks", "support", "honest",
    "best", "love", "win",
})  # fmt: skip
NEGATIVE = frozenset({
    "malo", "mala", "corrupto", "corrupta", "mentira", "mentiroso", "robo", "escandalo",
    "escándalo", "verguenza", "vergüenza", "peor", "renuncia", "fraude", "bad", "corrupt", "lie",
    "liar", "fraud", "worst", "shame", "resign", "scandal",
})  # fmt: skip
WORD_SPLIT = re.compile(r"(?:[^\w@#]|_)+")  # words: letters and digits, plus @handles and #tags
MENTION = re.compile(r"@(\w+)")


def sentiment_of(text: str) -> float:
    words = WORD_SPLIT.split(text.lower())
    pos = sum(1 for w in words if w in POSITIVE)
    neg = sum(1 for w in words if w in NEGATIVE)
    return (pos - neg) / max(1, pos + neg)


def mentions_of(text: str) -> int:
    return len(MENTION.findall(text))


def add_comment_features(event: dict[str, Any]) -> dict[str, Any]:
    """Add ``mentions`` (int), ``sentiment`` (float) and ``minute`` (yyyyMMddHHmm, UTC) in place."""
    text = str(event["text"])
    event["mentions"] = mentions_of(text)
    event["sentiment"] = sentiment_of(text)
    event["minute"] = minute_bucket(int(event["event_time"]))
    return event


# --- the rules as Spark SQL ------------------------------------------------------------------
# A word is a maximal run of word characters, '@' and '#' except '_' (what WORD_SPLIT leaves).
# Java's \w is ASCII unless (?U): with it, these match the Python patterns above.
_WORD_CHAR = r"[\w@#&&[^_]]"


def _count_words_sql(words: frozenset[str]) -> str:
    """SQL: how many words of the lower-cased text are in ``words`` — one regex pass (a lexicon
    word not preceded or followed by a word character is a whole word), not a lambda per word."""
    from spark_jobs.validation import sql_str

    if not all(w.isalpha() for w in words):
        raise ValueError("lexicon words are letters only (no regex escaping here)")
    alternatives = "|".join(sorted(words, key=lambda w: (-len(w), w)))
    pattern = f"(?U)(?<!{_WORD_CHAR})(?:{alternatives})(?!{_WORD_CHAR})"
    return f"size(regexp_extract_all(lower(text), {sql_str(pattern)}, 0))"


# Per-event features, in steps: a step's expressions may read the columns of the steps before it
# (those named with a leading '_' are helpers, dropped after the last step).
FEATURES_SQL: list[dict[str, str]] = [
    {
        "mentions": r"size(regexp_extract_all(text, '(?U)@(\\w+)', 1))",
        "minute": "date_format(timestamp_millis(event_time), 'yyyyMMddHHmm')",
        "_pos": _count_words_sql(POSITIVE),
        "_neg": _count_words_sql(NEGATIVE),
    },
    {"sentiment": "cast(_pos - _neg AS double) / cast(greatest(1, _pos + _neg) AS double)"},
]


def with_features(events):
    """``mentions``, ``sentiment`` (as in :func:`add_comment_features`) and ``minute`` columns."""
    from spark_jobs.context import with_feature_steps

    return with_feature_steps(events, FEATURES_SQL)


def mutations(events, ctx, refs=None):
    """The new comments of a batch (with the ``FEATURES_SQL`` columns) -> HBase mutations: the comments enriched with politician and
    party (JVM lookups of ``ref_politicians``, cached per executor), and this batch's contribution
    to every (page, minute) and (page, author) row. Retry: idempotent (explicit timestamps,
    the batch's own contribution column)."""
    from pyspark.sql import functions as F

    from spark_jobs import jvm_sink
    from spark_jobs.context import envelope_cells, mutation, mutations, text
    from spark_jobs.validation import event_row_key_sql, row_key_sql, sql_str

    from .contract import KIND

    feats = events.withColumn("_ref_table", F.lit(ctx.t("ref_politicians")))
    enriched = jvm_sink.lookup(feats, "_ref_table", "page_id", {"politician": "d:name", "party": "d:party"},
                               ctx.settings, cache_seconds=60)  # fmt: skip
    cells = envelope_cells(ctx)
    for name in ("page_id", "post_id", "author", "text", "lang", "mentions", "sentiment"):
        cells[f"d:{name}"] = text(name)
    cells.update({"d:politician": text("coalesce(politician, '')"), "d:party": text("coalesce(party, '')")})
    comments = mutations(enriched, mutation(ctx.t(KIND.events_table), event_row_key_sql(), ctx.ts, cells,
                                            metric="'good'", event_time="event_time"))  # fmt: skip
    # Both aggregates in one shuffle: (page, minute) and (page, author) keys side by side.
    # Sentiment is summed as a decimal: exact, so the sum does not depend on the order partial
    # aggregates meet in (a replayed batch must write byte-identical cells).
    keyed = enriched.selectExpr("'minute' AS _agg", "page_id", "minute AS _k", "mentions",
                                "cast(sentiment AS decimal(20,12)) AS sentiment", "coalesce(party, '') AS party").unionAll(
        enriched.selectExpr("'author' AS _agg", "page_id", "author AS _k", "0 AS mentions",
                            "cast(0 AS decimal(20,12)) AS sentiment", "'' AS party"))  # fmt: skip
    per_key = keyed.groupBy("_agg", "page_id", "_k").agg(
        F.expr("count(*) AS comments"), F.expr("sum(mentions) AS mentions"),
        F.expr("sum(sentiment) AS sentiment_sum"), F.expr("max(party) AS party"),
    )  # fmt: skip
    doc = "to_json(named_struct('comments', comments, 'mentions', mentions, 'party', party, " \
          "'sentiment_sum', round(cast(sentiment_sum AS double), 9)))"
    tables = f"CASE _agg WHEN 'minute' THEN {sql_str(ctx.t('social_minute'))} ELSE {sql_str(ctx.t('social_authors'))} END"
    contribution = text(f"CASE _agg WHEN 'minute' THEN {doc} ELSE cast(comments AS string) END")
    aggregates = mutations(per_key, mutation("", row_key_sql("page_id", "_k"), ctx.ts,
                                             {ctx.contribution_column: contribution}, table_expr=tables))  # fmt: skip
    return [comments, aggregates]
