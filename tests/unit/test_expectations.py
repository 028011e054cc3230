"""Expectations (``tormenta.eventkind.Expectation``): declared per kind, evaluated in Spark SQL after
the contract, counted by the batch's accounting. The same on the real stack, both paths:
tests/integration/test_expectations.py; a fail stops the job: tests/integration/test_third_kind.py."""

from __future__ import annotations

from dataclasses import replace

import pytest

from spark_jobs.pipeline import ExpectationFailed, _account, check_fail_expectations, with_expectations
from tormenta.contracts import KINDS
from tormenta.eventkind import Expectation

pytestmark = pytest.mark.unit

SOCIAL = KINDS["social.comment"]


def test_an_expectation_has_a_known_action_and_a_plain_name():
    with pytest.raises(ValueError, match="action 'ignore'"):
        Expectation("x", "true", "ignore")
    for bad in ("", "a|b", "it's", "x" * 61, "a\nb"):
        with pytest.raises(ValueError, match="1-60 characters"):
            Expectation(bad, "true", "warn")


def test_the_product_kinds_declare_their_expectations():
    assert {e.name: e.action for e in KINDS["social.comment"].expectations} == {
        "text not empty": "drop", "lang is es or en": "warn"}
    assert {e.name: e.action for e in KINDS["geo.position"].expectations} == {
        "position within a served city": "warn", "speed under 250 km/h": "drop"}


def frame(spark):
    rows = [("t.social", 0, i, "social.comment", text, lang, None) for i, (text, lang) in enumerate(
        [("hola", "es"), ("  ", "es"), ("hello", "fr"), ("  ", "fr"), (None, "en")])]  # fmt: skip
    rows.append(("t.social", 0, 9, "social.comment", "  ", "xx", "invalid_json"))  # the contract's reason stays
    return spark.createDataFrame(rows, "topic string, partition int, offset long, kind string, text string, "
                                       "lang string, reason string")  # fmt: skip


def test_a_drop_becomes_the_reason_a_warn_is_listed_and_the_contracts_reason_wins(spark):
    out = {r["offset"]: r for r in with_expectations(frame(spark), {"t.social": SOCIAL}).collect()}
    assert out[0]["reason"] is None and out[0]["_warned"] == []
    assert out[1]["reason"] == "expectation:text not empty"
    assert out[2]["reason"] is None and out[2]["_warned"] == ["social.comment: lang is es or en"]
    assert out[3]["reason"] == "expectation:text not empty"  # dropped: a drop wins over a warn
    assert out[4]["reason"] == "expectation:text not empty"  # null text: not met
    assert out[9]["reason"] == "invalid_json" and out[9]["_warned"] == []  # never reached the expectations


def test_a_fail_expectation_stops_the_batch_before_anything_is_written(spark):
    from spark_jobs.context import BatchContext

    strict = replace(SOCIAL, expectations=(Expectation("lang is es or en", "lang IN ('es', 'en')", "fail"),))
    classified = with_expectations(frame(spark), {"t.social": strict})
    ctx = BatchContext(label="s0000000000007", seq=7, endpoint=None)
    with pytest.raises(ExpectationFailed, match=r"batch s0000000000007: expectation 'social.comment: lang is es or "
                                                r"en' \(action fail\) not met by 2 record\(s\), e.g. t.social/0@"):
        check_fail_expectations(classified, ctx, {"t.social": strict})
    check_fail_expectations(with_expectations(frame(spark), {"t.social": SOCIAL}), ctx, {"t.social": SOCIAL})


class W:
    def __init__(self, rows):
        self.rows, self.min_event_time, self.histogram, self.fine = rows, None, [], {}


def test_the_accounting_counts_each_expectation_with_zeros_for_the_ones_every_record_met():
    from spark_jobs.context import BatchContext
    from spark_jobs.pipeline import BatchResult

    ctx = BatchContext(label="s1", seq=1, endpoint=None, namespace="n")
    written = {("", "read"): W(10), ("", "expect|social.comment: lang is es or en"): W(3),
               ("n_dead_letters", "social.comment|expectation:text not empty|false"): W(2)}  # fmt: skip
    result = BatchResult(label="s1")
    _account(ctx, result, written, {"t.social": SOCIAL})
    assert result.read == 10 and result.dead == 2
    assert result.expectations == {"social.comment: lang is es or en": {"action": "warn", "failed": 3},
                                   "social.comment: text not empty": {"action": "drop", "failed": 2}}  # fmt: skip
    assert result.dead_by_reason == {"expectation:text not empty": 2}
