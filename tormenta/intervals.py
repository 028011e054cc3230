"""Micro-batch intervals as people write them, turned into seconds and into Spark's trigger.

Accepted: Airflow's ``duration`` Param format (ISO 8601: ``PT1S``, ``PT0.5S``, ``PT10S``, ``PT1M``,
``PT1M30S``), plain seconds (``2``, ``0.5``), or Spark-like text (``1 second``, ``500 ms``,
``10s``, ``1 minute``). The range is 0.1 s to 1 h.
"""

from __future__ import annotations

import re

MIN_SECONDS, MAX_SECONDS = 0.1, 3600.0
_NUM = r"\d+(?:\.\d+)?"
TEXT_RE = re.compile(rf"^\s*({_NUM})\s*(ms|milliseconds?|s|seconds?|m|minutes?)\s*$", re.I)
ISO_RE = re.compile(rf"^P(?:({_NUM})D)?(?:T(?:({_NUM})H)?(?:({_NUM})M)?(?:({_NUM})S)?)?$")
UNIT_SECONDS = {"ms": 0.001, "millisecond": 0.001, "s": 1.0, "second": 1.0, "m": 60.0, "minute": 60.0}
# For a JSON-schema "pattern": the Param form refuses other syntax and zero intervals before a
# run is created; the 0.1 s - 1 h range is checked when the run plans (a clear task error).
PARAM_PATTERN = (
    r"^(?![P0DTHMS.]*$)(?!0*(\.0*)? ?[a-z]*$)"
    r"(P(\d+(\.\d+)?D)?(T(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?"
    r"|\d+(\.\d+)?|\d+(\.\d+)? ?(ms|milliseconds?|s|seconds?|m|minutes?))$"
)


def parse_interval(text: str | float | int) -> float:
    """Interval text -> seconds. Raises ValueError with what is accepted."""
    raw = str(text).strip()
    if re.fullmatch(_NUM, raw):
        seconds = float(raw)
    elif m := ISO_RE.match(raw.upper()):
        if raw.upper() in ("P", "PT") or raw.upper().endswith("T"):
            raise ValueError(f"invalid interval {raw!r}: an ISO 8601 duration needs a value, e.g. PT1S")
        d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        seconds = d * 86400 + h * 3600 + mi * 60 + s
    elif m := TEXT_RE.match(raw):
        value, unit = float(m.group(1)), m.group(2).lower()
        seconds = value * UNIT_SECONDS[unit if unit in ("s", "ms") else unit.rstrip("s")]
    else:
        raise ValueError(f"invalid interval {raw!r}: use PT1S, PT10S, PT1M, 2 (seconds), '500 ms' or '1 minute'")
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise ValueError(f"interval {seconds:g}s out of range [{MIN_SECONDS:g} s, {MAX_SECONDS:g} s]")
    return seconds


def spark_interval(seconds: float) -> str:
    """Seconds -> Spark's ``processingTime`` text."""
    return f"{int(round(seconds * 1000))} milliseconds"
