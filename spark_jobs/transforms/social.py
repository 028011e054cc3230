"""Social-comment business rules (Spark SQL, so they run in the JVM at full speed).

Per comment: ``mentions`` (number of @handles in the text) and ``sentiment`` in [-1, 1] from a
small Spanish/English keyword lexicon: (positive - negative) / max(1, positive + negative).
Per politician and minute, and per politician and author, the pipeline sums these up.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

POSITIVE = sorted({
    "bueno", "buena", "excelente", "gracias", "apoyo", "bien", "honesto", "honesta", "genial",
    "mejor", "bravo", "felicidades", "good", "great", "excellent", "thanks", "support", "honest",
    "best", "love", "win",
})  # fmt: skip
NEGATIVE = sorted({
    "malo", "mala", "corrupto", "corrupta", "mentira", "mentiroso", "robo", "escandalo",
    "escándalo", "verguenza", "vergüenza", "peor", "renuncia", "fraude", "bad", "corrupt", "lie",
    "liar", "fraud", "worst", "shame", "resign", "scandal",
})  # fmt: skip


def _words(text: Column) -> Column:
    return F.split(F.lower(text), r"[^\p{L}\p{N}@#]+")


def _count_in(words: Column, lexicon: list[str]) -> Column:
    lex = F.array(*[F.lit(w) for w in lexicon])
    return F.size(F.filter(words, lambda w: F.array_contains(lex, w)))


def add_comment_features(df: DataFrame) -> DataFrame:
    """Add ``mentions`` (int), ``sentiment`` (double) and ``minute`` (yyyyMMddHHmm, UTC)."""
    words = _words(F.col("text"))
    pos = _count_in(words, POSITIVE)
    neg = _count_in(words, NEGATIVE)
    return (
        df.withColumn("mentions", F.size(F.regexp_extract_all(F.col("text"), F.lit(r"@(\w+)"), 1)))
        .withColumn("sentiment", ((pos - neg) / F.greatest(F.lit(1), pos + neg)).cast("double"))
        .withColumn("minute", F.date_format(F.timestamp_millis("event_time"), "yyyyMMddHHmm"))
    )


def sentiment_of(text: str) -> float:
    """Python twin of the sentiment rule (reference for tests and for the per-event benchmark)."""
    import re

    words = re.split(r"[^\w@#]+", text.lower())
    pos = sum(1 for w in words if w in POSITIVE)
    neg = sum(1 for w in words if w in NEGATIVE)
    return (pos - neg) / max(1, pos + neg)
