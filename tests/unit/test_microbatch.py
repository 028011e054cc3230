"""Params, ingestor plan, capacity and supervisor of the micro-batch DAG (no services)."""

from __future__ import annotations

import re

import pytest

from tormenta import capacity, microbatch
from tormenta.intervals import PARAM_PATTERN, parse_interval, spark_interval

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("text,seconds", [
    ("PT1S", 1), ("PT0.5S", 0.5), ("PT10S", 10), ("PT1M", 60), ("PT1M30S", 90), ("P0DT0H0M2S", 2),
    ("2", 2), ("0.5", 0.5), ("1 second", 1), ("500 ms", 0.5), ("10s", 10), ("1 minute", 60), ("PT1H", 3600),
])  # fmt: skip
def test_interval_forms(text, seconds):
    assert parse_interval(text) == seconds
    assert re.fullmatch(PARAM_PATTERN, text), "the Param pattern must accept what the job accepts"


@pytest.mark.parametrize("text", ["PT", "P", "PT0S", "0", "PT2H", "1; rm -rf /", "$(id)", "1 fortnight", "", "-1"])
def test_interval_rejects(text):
    with pytest.raises(ValueError):
        parse_interval(text)


def test_param_pattern_rejects_shell_syntax():
    for text in ["1; rm -rf /", "$(reboot)", "PT1S`id`", "PT1S\nPT2S", "2 && ls", "../../x", "0", "0.0", "PT0S",
                 "P", "PT", "0 ms", "0s"]:
        assert not re.fullmatch(PARAM_PATTERN, text), text


def test_spark_interval():
    assert spark_interval(1.0) == "1000 milliseconds"
    assert spark_interval(0.25) == "250 milliseconds"


def defaults(**overrides):
    p = {k: v.value for k, v in microbatch.params().items()}
    p.update(overrides)
    return p


def test_params_have_titles_descriptions_and_limits():
    for name, param in microbatch.params().items():
        schema = param.schema
        assert schema.get("title") and param.description, name
        limits = {"minimum", "maximum", "enum", "pattern", "items"} & set(schema)
        assert limits or schema["type"] == "boolean", f"{name} has no limits"


@pytest.mark.parametrize("name,value", [
    ("interval", "1; rm -rf /"), ("namespace", "../etc"), ("namespace", "a b"), ("rate_per_page", -1),
    ("hot_pages", ["../../x"]), ("storm_page", "pol-99"), ("sources", ["ftp"]), ("max_records_per_batch", 0),
])  # fmt: skip
def test_param_schema_rejects_hostile_values(name, value):
    from airflow.sdk import Param
    from airflow.sdk.exceptions import ParamValidationError

    param = microbatch.params()[name]
    with pytest.raises(ParamValidationError):
        Param(value, **param.schema).resolve()


def test_plan_hot_page_gets_its_own_ingestors_and_cold_pages_are_shared():
    p = microbatch.plan(defaults(hot_pages=["pol-03"], ingestors_per_hot_page=2, ingestors_other_pages=3,
                                 sources=["social"]), cores=8)  # fmt: skip
    names = p.names
    assert names[:2] == ["social-pol-03-1of2", "social-pol-03-2of2"]
    assert names[2:] == ["social-pages-1", "social-pages-2", "social-pages-3"]
    shards = [s["argv"][s["argv"].index("--shard") + 1] for s in p.ingestors[:2]]
    assert shards == ["0", "1"]
    cold_pages = [s["argv"][s["argv"].index("--pages") + 1].split(",") for s in p.ingestors[2:]]
    flat = sorted(x for group in cold_pages for x in group)
    assert flat == sorted(set(microbatch.POLITICIANS) - {"pol-03"})  # every other page exactly once
    for spec in p.ingestors:
        assert all(isinstance(a, str) for a in spec["argv"])  # an argument list, never a shell string
        assert spec["argv"][spec["argv"].index("--topic") + 1] == "tormenta.social.comments"


def test_plan_storm_only_on_the_storm_page_and_namespace_topics():
    p = microbatch.plan(defaults(storm=True, storm_page="pol-05", storm_factor=30, namespace="demo",
                                 sources=["social", "geo"], geo_endpoints=2))  # fmt: skip
    with_storm = [s["name"] for s in p.ingestors if "--storm-page" in s["argv"]]
    assert len(with_storm) == 1 and "pol-05" in next(s for s in p.ingestors if s["name"] == with_storm[0])["argv"][2]
    geo = [s for s in p.ingestors if s["name"].startswith("geo-http")]
    assert [s["argv"][s["argv"].index("--port") + 1] for s in geo] == ["8181", "8182"]
    assert all(s["argv"][-1] == "demo.geo.positions" for s in geo)
    phones = next(s for s in p.ingestors if s["name"] == "phones")
    assert phones["module"] == "ingestors.fleet"
    assert "http://127.0.0.1:8181,http://127.0.0.1:8182" in phones["argv"]


def test_plan_warns_when_parallelism_exceeds_the_cores():
    p = microbatch.plan(defaults(), cores=2)
    assert any("exceeds the cores" in w for w in p.warnings)
    quiet = microbatch.plan(defaults(sources=["social"], hot_pages=[], rate_per_page=1, interval="PT10S"), cores=16)
    assert quiet.warnings == []
    # the same at 1 s: shorter than a micro-batch's measured fixed part, whatever the cores
    short = microbatch.plan(defaults(sources=["social"], hot_pages=[], rate_per_page=1, interval="PT1S"), cores=16)
    assert any("a 1 s interval is not held" in w for w in short.warnings) == (capacity.BATCH_FIXED_S >= 1)


def test_capacity_formula_and_pool_sizing():
    c = capacity.estimate(5000, 400, 10, cores=16, spark_cores=4, events_per_core=1000, batch_fixed_s=0)
    assert c.records_per_batch == 50_000
    assert c.raw_bytes_per_batch == 50_000 * 400
    assert c.cores_needed == 5
    assert any("needs ~5 Spark core(s)" in w for w in c.warnings)
    # 2 s of a 10 s interval go to the batch's fixed part: 50,000 events in 8 s at 1,000/s per core
    assert capacity.estimate(5000, 400, 10, cores=16, spark_cores=8, events_per_core=1000,
                             batch_fixed_s=2).cores_needed == 7  # fmt: skip
    assert [capacity.spark_pool_slots(n) for n in (1, 2, 4, 8, 10, 16)] == [1, 2, 3, 6, 8, 13]
    assert capacity.pool_warnings(2) and not capacity.pool_warnings(8)


def test_an_interval_shorter_than_a_batchs_fixed_cost_is_never_held():
    c = capacity.estimate(10, 400, 1, cores=16, spark_cores=8, events_per_core=1000, batch_fixed_s=2.5)
    assert any("a 1 s interval is not held at any rate" in w and "5 s or more" in w for w in c.warnings)
    assert not any("not held" in w for w in capacity.estimate(
        10, 400, 5, cores=16, spark_cores=8, events_per_core=1000, batch_fixed_s=2.5).warnings)  # fmt: skip


def test_capacity_rejects_nonsense():
    with pytest.raises(ValueError):
        capacity.estimate(0, 400, 1)


class FakeControl:
    def __init__(self):
        self.stop = None
        self.stream_stop = False
        self.stopped: dict[str, dict] = {}
        self.log: list[str] = []
        self.phase = "running"

    def stop_reason(self, run_id):
        return self.stop

    def request_stop(self, run_id, reason):
        self.log.append("stop")
        self.stop = reason
        return True

    def request_stream_stop(self, run_id):
        self.log.append("stream_stop")
        self.stream_stop = True

    def state(self, run_id):
        return {"stopped": dict(self.stopped), "phase": self.phase, "stop": self.stop}

    def finish(self, run_id):
        self.log.append("finish")
        self.phase = "stopped"


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


def supervision(control, clock, **kw):
    kw.setdefault("handover", lambda: False)
    kw.setdefault("failed_tasks", lambda: [])
    kw.setdefault("watch", lambda: {})
    return microbatch.Supervision(control=control, run_id="r", ingestors=["a", "b"], clock=clock,
                                  sleep=clock.sleep, **kw)  # fmt: skip


def test_supervisor_stops_ingestors_before_the_stream():
    control, clock = FakeControl(), Clock()

    def sleep(s):
        clock.sleep(s)
        if clock.t > 10 and control.stop is None:
            control.stop = "stop DAG"
        if control.stop and clock.t > 20:
            control.stopped.update(a={}, b={})
        if control.stream_stop:
            assert set(control.stopped) >= {"a", "b"}, "stream asked to stop before the ingestors stopped"
            control.stopped["stream"] = {}

    sup = supervision(control, clock)
    sup.sleep = sleep
    out = microbatch.supervise(sup)
    assert out["reason"] == "stop DAG"
    assert control.log == ["stream_stop", "finish"]
    assert out["unconfirmed"] == []


def test_supervisor_hands_over_to_a_queued_run_and_honours_run_minutes():
    control, clock = FakeControl(), Clock()
    queued = {"n": 0}

    def sleep(s):
        clock.sleep(s)
        queued["n"] = 1 if clock.t > 6 else 0
        if control.stop:
            control.stopped.update(a={}, b={}, stream={})

    sup = supervision(control, clock, handover=lambda: queued["n"] > 0)
    sup.sleep = sleep
    assert microbatch.supervise(sup)["reason"].startswith("handover")

    control2, clock2 = FakeControl(), Clock()

    def sleep2(s):
        clock2.sleep(s)
        if control2.stop:
            control2.stopped.update(a={}, b={}, stream={})

    sup = supervision(control2, clock2, deadline=30.0)
    sup.sleep = sleep2
    assert microbatch.supervise(sup)["reason"] == "run_minutes elapsed"
    assert 30.0 <= clock2.t < 40


def test_supervisor_fails_the_run_when_a_part_failed_for_good():
    control, clock = FakeControl(), Clock()

    def sleep(s):
        clock.sleep(s)
        control.stopped.update(a={}, b={})

    sup = supervision(control, clock, failed_tasks=lambda: ["stream"])
    sup.sleep = sleep
    with pytest.raises(microbatch.SupervisionError, match="stream"):
        microbatch.supervise(sup)
    assert control.log[0] == "stop"


def test_supervisor_gives_up_on_a_stream_that_never_confirms():
    control, clock = FakeControl(), Clock()
    control.stop = "stop DAG"
    control.stopped.update(a={}, b={})
    sup = supervision(control, clock, drain_timeout_s=60)
    with pytest.raises(microbatch.SupervisionError, match="did not confirm"):
        microbatch.supervise(sup)


def test_describe_freshness():
    progress = {"result": {"label": "s1", "written_at": 10_000, "max_event_time": 7_000, "read": 5, "dead": 0,
                           "latency_ms": {"p50": 1200.0}}}  # fmt: skip
    d = microbatch.describe(progress, lag=3, now_ms=11_000)
    assert d == {"last_batch": "s1", "written_s_ago": 1.0, "newest_event_age_s": 4.0, "rows": 5, "dead": 0,
                 "p50_ms": 1200.0, "lag": 3}  # fmt: skip
    assert microbatch.describe(None, None) == {"batches": 0, "lag": None}


def test_spark_job_operator_builds_its_command_after_the_arguments_are_final(monkeypatch):
    from types import SimpleNamespace

    from tormenta.providers.spark import SparkJobOperator

    op = SparkJobOperator(task_id="stream", job="streaming", jars="a.jar", checkpoint_root=True,
                          meter_namespace="ns", pool_slots=2, application_args=["--bootstrap", "b"])  # fmt: skip
    monkeypatch.setattr(SparkJobOperator, "_get_hook", lambda self: SimpleNamespace(
        args=list(self.application_args), _connection={"master": "local[*]"}))  # fmt: skip
    op.prepare({"dag": SimpleNamespace(dag_id="d"), "run_id": "r", "ti": SimpleNamespace(try_number=3)})
    assert "--checkpoint-root" in op._hook.args  # the hook saw the final argument list
    assert op._hook.meter == {"component": "spark:stream", "services": False, "namespace": "ns",
                              "dag_id": "d", "run_id": "r", "try_number": 3}  # fmt: skip
