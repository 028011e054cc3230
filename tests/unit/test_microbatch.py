"""Params, ingestor plan, capacity and supervisor of the micro-batch DAG (no services)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from tests.fakes import MemoryHBase
from tormenta import capacity, microbatch, schema
from tormenta.control import ControlPlane
from tormenta.intervals import PARAM_PATTERN, parse_interval, spark_interval
from tormenta.reference import POLITICIANS

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


@pytest.mark.parametrize("text", ["PT2H", "PT0.01S", "1000000000", "0.09", "3600.001", "PT60M1S", "99 ms",
                                  "61 minutes", "PT0.05S", "0.01 s", "3600001 ms"])
def test_param_pattern_refuses_intervals_out_of_range(text):
    """The form says 0.1 s to 1 h: a trigger outside it is refused before a run exists."""
    assert not re.fullmatch(PARAM_PATTERN, text), text


def _numbers():
    """Every number of 0-3 decimals from 0 to 4000 on a coarse grid, plus both edges finely."""
    values = {f"{i / 1000:.{d}f}" for i in range(0, 4_000_000, 997) for d in (0, 1, 2, 3)}
    values |= {f"{i / 1000:.3f}" for i in range(0, 300)} | {f"{i / 1000:.3f}" for i in range(3_599_000, 3_601_000)}
    values |= {f"{i / 10:.1f}" for i in range(0, 40_000)} | {str(i) for i in range(0, 4001)}
    return sorted(values, key=float)


@pytest.mark.parametrize("unit,scale", [("", 1), (" s", 1), ("s", 1), (" seconds", 1), (" ms", 0.001),
                                        ("ms", 0.001), (" minutes", 60), ("m", 60)])  # fmt: skip
def test_param_pattern_accepts_exactly_the_range_for_plain_numbers(unit, scale):
    accepted = 0
    for number in _numbers():
        for value in ({number, format((Decimal(number) * 1000).normalize(), "f")} if scale < 1 else {number}):
            text = value + unit
            seconds = float(value) * scale
            matched = bool(re.fullmatch(PARAM_PATTERN, text))
            if matched:
                accepted += 1
                assert parse_interval(text) == pytest.approx(seconds), text
            if unit in ("", " s", "s", " seconds", " ms", "ms"):  # whole range expressible: exactly the range
                assert matched == (0.1 - 1e-9 <= seconds <= 3600 + 1e-9), text
    assert accepted > 500


def test_everything_the_iso_pattern_accepts_parses_in_range():
    accepted = 0
    for h in ("", "0H", "1H", "2H"):
        for m in ("", "0M", "1M", "1.5M", "30M", "59M", "59.999M", "60M", "61M"):
            for s in ("", "0S", "0.05S", "0.1S", "1S", "59S", "59.999S", "60S", "3600S", "3601S"):
                for d in ("", "0D", "1D"):
                    text = f"P{d}T{h}{m}{s}"
                    if re.fullmatch(PARAM_PATTERN, text):
                        accepted += 1
                        assert 0.1 <= parse_interval(text) <= 3600, text
    assert accepted >= 20
    for text in ("PT1H", "PT60M", "PT59M59.999S", "PT3600S", "P0DT0H0M0.1S", "PT1.5M"):
        assert re.fullmatch(PARAM_PATTERN, text), text
    for text in ("PT1H1S", "PT2H", "P1DT0S", "PT61M", "PT0.05S", "PT60M1S"):
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
    assert flat == sorted(set(POLITICIANS) - {"pol-03"})  # every other page exactly once
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
    """The real ControlPlane on the shared in-memory HBase (tests/fakes.py), run "r" begun,
    recording the stop-protocol calls the supervisor makes."""

    def __init__(self):
        hbase = MemoryHBase()
        schema.ensure_tables(hbase, "ns")
        self.plane = ControlPlane(hbase, "ns")
        self.plane.begin("r")
        self.log: list[str] = []

    def __getattr__(self, name):  # every other call: the control plane's own
        return getattr(self.plane, name)

    def request_stop(self, run_id, reason):
        self.log.append("stop")
        return self.plane.request_stop(run_id, reason)

    def request_stream_stop(self, run_id):
        self.log.append("stream_stop")
        self.plane.request_stream_stop(run_id)

    def finish(self, run_id):
        self.log.append("finish")
        self.plane.finish(run_id)

    # what the other parts of a run do, and what the test reads
    @property
    def stop(self):
        return self.plane.stop_reason("r")

    @stop.setter
    def stop(self, reason):  # the stop DAG asks
        self.plane.request_stop("r", reason)

    @property
    def stream_stop(self):
        return self.plane.stream_stop_requested("r")

    @property
    def stopped(self):
        return self.plane.state("r")["stopped"]

    @property
    def failed(self):
        return self.plane.state("r")["failed"]

    def ended(self, *components):  # ingestors / the stream confirm their stop
        for c in components:
            self.plane.mark_stopped("r", c)


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
    kw.setdefault("ingestors", ["a", "b"])
    return microbatch.Supervision(control=control, run_id="r", clock=clock, sleep=clock.sleep, **kw)


def test_supervisor_stops_ingestors_before_the_stream():
    control, clock = FakeControl(), Clock()

    def sleep(s):
        clock.sleep(s)
        if clock.t > 10 and control.stop is None:
            control.stop = "stop DAG"
        if control.stop and clock.t > 20:
            control.ended("a", "b")
        if control.stream_stop:
            assert set(control.stopped) >= {"a", "b"}, "stream asked to stop before the ingestors stopped"
            control.ended("stream")

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
            control.ended("a", "b", "stream")

    sup = supervision(control, clock, handover=lambda: queued["n"] > 0)
    sup.sleep = sleep
    assert microbatch.supervise(sup)["reason"].startswith("handover")

    control2, clock2 = FakeControl(), Clock()

    def sleep2(s):
        clock2.sleep(s)
        if control2.stop:
            control2.ended("a", "b", "stream")

    sup = supervision(control2, clock2, deadline=30.0)
    sup.sleep = sleep2
    assert microbatch.supervise(sup)["reason"] == "run_minutes elapsed"
    assert 30.0 <= clock2.t < 40


def test_a_triggered_run_ends_green_once_its_stream_drained_kafka():
    """The stream of a triggered run ends on its own (availableNow) and confirms its stop: the
    supervisor sees it, stops in order (no ingestors) and the run ends without a failure."""
    control, clock = FakeControl(), Clock()

    def sleep(s):
        clock.sleep(s)
        if clock.t > 8:
            control.ended("stream")

    sup = supervision(control, clock, ingestors=[])
    sup.sleep = sleep
    out = microbatch.supervise(sup)
    assert out["reason"] == "the streaming job ended: it processed what Kafka held (a triggered run)"
    assert control.log == ["stop", "stream_stop", "finish"] and out["stopped"] == ["stream"]
    assert control.plane.state("r")["phase"] == "stopped" and not control.failed
    assert 8 < clock.t < 20


def test_a_triggered_run_plans_no_ingestors_and_passes_its_mode_to_the_job():
    from tormenta.jobs import StreamArgs

    p = microbatch.plan(defaults(mode="triggered"))
    assert p.ingestors == [] and p.warnings == []
    assert microbatch.plan(defaults(mode="triggered", run_minutes=5)).warnings == [
        "run_minutes has no effect on a triggered run"]
    assert microbatch.plan(defaults()).ingestors  # always-on, the default: the ingestors run
    assert StreamArgs(bootstrap="b", mode="triggered").to_argv()[-2:] == ["--mode", "triggered"]
    args = StreamArgs.parser("x").parse_args(["--bootstrap", "b", "--mode", "triggered"])
    assert args.mode == "triggered"
    with pytest.raises(SystemExit):
        StreamArgs.parser("x").parse_args(["--bootstrap", "b", "--mode", "continuous"])
    form = microbatch.params()
    assert form["mode"].value == "always-on" and list(form)[:3] == ["interval", "mode", "sources"]


def test_a_real_time_run_plans_its_ingestors_and_warns_of_what_it_does_not_process():
    from tormenta.jobs import StreamArgs

    both = microbatch.plan(defaults(mode="real-time", sources=["social", "geo"]))
    assert both.ingestors == microbatch.plan(defaults(sources=["social", "geo"])).ingestors  # as always-on
    assert [w for w in both.warnings if "no real-time rule" in w] == [
        "social: its kind has no real-time rule, so this run does not process its events: they wait in Kafka for "
        "the next always-on or triggered run"]
    assert any("the interval is not used" in w for w in both.warnings)
    geo = microbatch.plan(defaults(mode="real-time", sources=["geo"]))
    assert not [w for w in geo.warnings if "no real-time rule" in w]
    assert not [w for w in microbatch.plan(defaults(sources=["social"])).warnings if "real-time" in w]
    assert StreamArgs.parser("x").parse_args(["--bootstrap", "b", "--mode", "real-time"]).mode == "real-time"


def test_supervisor_fails_the_run_when_a_part_failed_for_good():
    control, clock = FakeControl(), Clock()

    def sleep(s):
        clock.sleep(s)
        control.ended("a", "b")

    sup = supervision(control, clock, failed_tasks=lambda: ["stream"])
    sup.sleep = sleep
    with pytest.raises(microbatch.RunFailed, match="stream"):  # final: the task fails without retries
        microbatch.supervise(sup)
    assert control.log[0] == "stop"


def test_supervisor_gives_up_on_a_stream_that_never_confirms():
    control, clock = FakeControl(), Clock()
    control.stop = "stop DAG"
    control.ended("a", "b")
    sup = supervision(control, clock, drain_timeout_s=60)
    with pytest.raises(microbatch.SupervisionError, match="did not confirm") as err:
        microbatch.supervise(sup)
    assert not isinstance(err.value, microbatch.RunFailed)  # a retry may still see the confirmation


class Outage:
    """Wraps a fake so every call raises while ``down()`` is true, as HBase does when it restarts."""

    def __init__(self, inner, down):
        self.inner, self.down, self.refused = inner, down, 0

    def __getattr__(self, name):
        attr = getattr(self.inner, name)

        def call(*a, **kw):
            if self.down():
                self.refused += 1
                raise ConnectionError("Connection refused: hbase-thrift")
            return attr(*a, **kw)

        return call


def test_supervisor_rides_out_an_outage_and_still_hands_over_and_stops_in_order():
    control, clock = FakeControl(), Clock()
    flaky = Outage(control, lambda: 5 < clock.t < 305)  # HBase away for 5 minutes

    def sleep(s):
        clock.sleep(s)
        if control.stop:
            control.ended("a", "b", "stream")

    sup = supervision(flaky, clock, handover=lambda: clock.t > 100)
    sup.sleep = sleep
    out = microbatch.supervise(sup)
    assert out["reason"].startswith("handover") and control.log == ["stop", "stream_stop", "finish"]
    assert flaky.refused > 5 and clock.t > 305


def test_supervisor_gives_up_after_outage_s_with_the_reason():
    control, clock = FakeControl(), Clock()
    flaky = Outage(control, lambda: clock.t > 5)
    sup = supervision(flaky, clock, outage_s=600)
    with pytest.raises(microbatch.SupervisionError, match="reading the stop request: still failing after 600s"):
        microbatch.supervise(sup)
    assert 600 <= clock.t < 700


def test_describe_freshness():
    progress = {"result": {"label": "s1", "written_at": 10_000, "max_event_time": 7_000, "read": 5, "dead": 0,
                           "latency_ms": {"p50": 1200.0}}}  # fmt: skip
    d = microbatch.describe(progress, lag=3, now_ms=11_000)
    assert d == {"last_batch": "s1", "written_s_ago": 1.0, "newest_event_age_s": 4.0, "rows": 5, "dead": 0,
                 "p50_ms": 1200.0, "lag": 3}  # fmt: skip
    assert microbatch.describe(None, None) == {"batches": 0, "lag": None}


def test_spark_job_operator_builds_its_command_after_the_arguments_are_final(monkeypatch):
    import json
    from types import SimpleNamespace

    from tormenta.providers.spark import SparkJobOperator
    from tormenta.settings import load

    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[*]"}))
    monkeypatch.setattr("tormenta.jvm.spark_classpath_conf", lambda: {})
    op = SparkJobOperator(task_id="stream", job="streaming", jars="a.jar", checkpoint_root=True,
                          meter_namespace="ns", pool_slots=2, application_args=["--bootstrap", "b"])  # fmt: skip
    op.prepare({"dag": SimpleNamespace(dag_id="d"), "run_id": "r", "ti": SimpleNamespace(try_number=3)})
    cmd = op._hook._build_spark_submit_command(op.application)  # the provider's hook, for real
    assert cmd[cmd.index("--master") + 1] == "local[2]"  # the cores rule: the task's pool slots
    assert cmd[-4:] == ["--bootstrap", "b", "--checkpoint-root", load().checkpoint_root]  # the final arguments
    assert op._hook.meter == {"component": "spark:stream", "services": False, "namespace": "ns",
                              "dag_id": "d", "run_id": "r", "try_number": 3}  # fmt: skip


def test_spark_job_operator_gives_its_hook_every_field_the_providers_operator_gives(monkeypatch):
    """SparkJobOperator builds the provider's hook subclass from the same operator fields as the
    provider's own ``_get_hook``: a field a provider upgrade adds (or renames) fails here."""
    import inspect
    import json

    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    from tormenta.providers.spark import SparkJobOperator

    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "spark://m:7077"}))
    op = SparkJobOperator(task_id="t", job="batch", jars="a.jar", files="f", driver_memory="1g", executor_cores=1,
                          name="n", application_args=["--x"], verbose=True, pool_slots=3)  # fmt: skip
    params = set(inspect.signature(SparkSubmitHook.__init__).parameters) - {"self", "args", "kwargs"}
    assert set(op.hook_kwargs()) == params
    theirs, ours = vars(SparkSubmitOperator._get_hook(op)), vars(op._get_hook())
    assert theirs["_total_executor_cores"] is None and ours["_total_executor_cores"] == 3  # the cores rule
    same = set(theirs) - {"_total_executor_cores"}
    assert {k: ours[k] for k in same} == {k: theirs[k] for k in same}


def test_unknown_conf_keys_are_refused_with_the_likely_meant_one():
    from tormenta.triggers import TriggerError, check_conf

    names = microbatch.params().keys()
    check_conf({"interval": "PT2S", "storm": True}, names)
    check_conf(None, names)
    with pytest.raises(TriggerError) as err:
        check_conf({"intervall": "PT2S", "interval": "PT1S", "zzz": 1}, names)
    assert "'intervall' (did you mean 'interval'?), 'zzz':" in str(err.value)


@pytest.mark.parametrize("rc,stop,module,expected", [
    (0, None, "ingestors.runner", "stopped"),  # a finite feed ended, all acknowledged
    (0, "stop DAG", "ingestors.runner", "stopped"),
    (1, "stop DAG", "ingestors.runner", "fail"),  # Kafka did not acknowledge everything: never green
    (-9, "stop DAG", "ingestors.runner", "fail"),
    (1, None, "ingestors.runner", "retry"),  # died on its own: resume from the saved position
    (-9, None, "ingestors.runner", "retry"),
    (78, None, "ingestors.runner", "fail"),  # bad configuration: a retry cannot help
    (2, None, "ingestors.runner", "fail"),
    (-15, "stop DAG", "ingestors.fleet", "stopped"),  # the phones simulator on SIGTERM
    (1, None, "ingestors.fleet", "retry"),
])  # fmt: skip
def test_what_an_ingestors_exit_means_for_its_task(rc, stop, module, expected):
    from tormenta.providers.ingestor import verdict

    assert verdict(rc, stop, module) == expected


@pytest.mark.parametrize("state,run_state,supervise,stalled", [
    ({"phase": "stopping", "stopped": {"a": {}}}, "running", "running", None),
    ({"phase": "stopped", "stopped": {}}, "failed", "failed", None),
    ({"phase": "stopping", "stopped": {"a": {}}}, "failed", "failed", "the run ended (failed)"),
    ({"phase": "draining", "stopped": {}, "failed": {"b": {}}}, "running", "failed", "supervise task is failed"),
    ({"phase": "running", "stopped": {}}, "running", "upstream_failed", "nobody completes the stop"),
])  # fmt: skip
def test_stop_dag_knows_when_a_stop_can_no_longer_complete(state, run_state, supervise, stalled):
    got = microbatch.stop_stalled(state, run_state, supervise)
    assert (got is None) if stalled is None else (stalled in got)


def test_the_running_run_hands_over_only_to_a_queued_run_that_can_run():
    class Log:
        lines: list[str] = []

        def warning(self, fmt, *args):
            self.lines.append(fmt % args)

    queued = [
        {"dag_run_id": "bad", "queued_at": "2026-11-27T10:00:00", "conf": {"intervall": "PT2S"}},
        {"dag_run_id": "good", "queued_at": "2026-11-27T10:00:05", "conf": {"interval": "PT2S"}},
    ]
    warned: set[str] = set()
    log = Log()
    assert microbatch.handover_target(queued[:1], warned, log) is None
    assert microbatch.handover_target(queued[:1], warned, log) is None
    assert len(log.lines) == 1 and log.lines[0].startswith(
        "NOT handing over to queued run bad, the pipeline keeps running: unknown conf key(s) 'intervall' "
        "(did you mean 'interval'?)")  # fmt: skip
    assert microbatch.handover_target(queued, warned, log) == "good"
    assert microbatch.trigger_problem({"interval": "PT2H"}) == "interval 7200s out of range [0.1 s, 3600 s]"
    assert microbatch.trigger_problem({}) is None


@pytest.mark.parametrize("view,running_s,stuck", [
    ({"batches": 0, "lag": 500}, 700, True),  # nothing written since start, records waiting
    ({"batches": 0, "lag": 500}, 100, False),
    ({"batches": 0, "lag": 0}, 7000, False),  # idle, nothing to read: not stuck
    ({"last_batch": "s1", "written_s_ago": 650.0, "lag": 12}, 9000, True),
    ({"last_batch": "s1", "written_s_ago": 650.0, "lag": 0}, 9000, False),
    ({"last_batch": "s1", "written_s_ago": 3.0, "lag": 10**6}, 9000, False),  # busy, not stuck
    # an earlier run's newest batch, an hour old, and this run started 30 s ago with a backlog
    ({"last_batch": "s1", "written_s_ago": 3600.0, "lag": 9241}, 30, False),
    ({"last_batch": "s1", "written_s_ago": 3600.0, "lag": 9241}, 650, True),
    ({}, 9000, False),  # progress not readable: no verdict
])  # fmt: skip
def test_stuck_means_records_wait_and_no_batch_is_written(view, running_s, stuck):
    assert (microbatch.stuck_reason(view, running_s, 600) is not None) == stuck


def test_a_stuck_pipeline_is_stopped_and_fails_and_a_retry_cannot_end_green():
    control, clock = FakeControl(), Clock()

    def sleep(s):
        clock.sleep(s)
        if control.stop:
            control.ended("a", "b", "stream")

    view = {"last_batch": "s9", "written_s_ago": 0.0, "lag": 40}

    def watch():
        view["written_s_ago"] = clock.t  # the last batch was written at t=0
        return dict(view)

    sup = supervision(control, clock, watch=watch, stuck_after_s=600)
    sup.sleep = sleep
    with pytest.raises(microbatch.RunFailed, match="stuck: no micro-batch written for 6[0-9][0-9]s while 40"):
        microbatch.supervise(sup)
    assert control.stop.startswith("stuck") and "supervise" in control.failed
    retry = supervision(control, Clock(), watch=watch)  # Airflow retries the task: the stop is already requested
    retry.sleep = sleep
    with pytest.raises(microbatch.SupervisionError, match="parts of the run failed: supervise: stuck"):
        microbatch.supervise(retry)
