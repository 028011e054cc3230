"""Social-comment business rules, one comment at a time (pure Python, run inside Spark's workers).

Per comment: ``mentions`` (number of @handles in the text) and ``sentiment`` in [-1, 1] from a
small Spanish/English keyword lexicon: (positive - negative) / max(1, positive + negative).
Per politician and minute, and per politician and author, the pipeline sums these up.
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
