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
# For the Param's JSON-schema "pattern": the trigger form and the REST API refuse, before a run
# exists, any syntax the job does not take and any value outside 0.1 s - 1 h, so a bad interval
# can never reach a running pipeline (it would hand over to a run that fails). The schema accepts
# a subset of what ``parse_interval`` takes (no leading zeros, up to 3 decimals, days and hours
# only as ``P0D``/``T0H``/``PT1H``); tests check that everything it accepts parses in range.
_FRAC = r"(\.\d{1,3})?"
_SEC = rf"(0\.[1-9]\d{{0,2}}|[1-9]\d{{0,2}}{_FRAC}|[12]\d{{3}}{_FRAC}|3[0-5]\d{{2}}{_FRAC}|3600(\.0{{1,3}})?)"
_MS = rf"([1-9]\d{{2,5}}{_FRAC}|[12]\d{{6}}{_FRAC}|3[0-5]\d{{5}}{_FRAC}|3600000(\.0{{1,3}})?)"
_MIN59 = r"([1-9]|[1-5]\d)"
_MIN = rf"({_MIN59}{_FRAC}|60(\.0{{1,3}})?)"
_ISO = (rf"P(0D)?T((0H)?(0M)?{_SEC}S|(0H)?{_MIN59}{_FRAC}M|(0H)?{_MIN59}M[0-5]?\d{_FRAC}S"
        rf"|(0H)?60M|1H)")
PARAM_PATTERN = rf"^({_ISO}|{_SEC}|{_SEC} ?(s|seconds?)|{_MS} ?(ms|milliseconds?)|{_MIN} ?(m|minutes?))$"


# The micro-batch interval when nobody chose one (the source document's default): the DAG's
# Param, the streaming job's --interval, `tormenta capacity` and the comparison page all use it.
DEFAULT_INTERVAL = "PT1S"


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
