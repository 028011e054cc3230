"""The micro-batch pipeline as Airflow runs it: Params, the ingestor plan, the supervisor.

Pure logic (no Airflow import at module level) so it is unit-tested without a scheduler;
``dags/tormenta_microbatch.py`` only wires these functions into tasks.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from tormenta import capacity
from tormenta.contracts import DEFAULT_NAMESPACE, KINDS, NAMESPACE_PATTERN, kind_part, query_name
from tormenta.intervals import DEFAULT_INTERVAL, PARAM_PATTERN, parse_interval
from tormenta.jobs import STREAM_MODES

DAG_ID = "tormenta_microbatch"
STOP_DAG_ID = "tormenta_microbatch_stop"
STORM_DAG_ID = "tormenta_storm"
TRIGGERED_DAG_ID = "tormenta_microbatch_triggered"
TRIGGERED_SCHEDULE = "*/5 * * * *"  # a triggered run every 5 minutes, once the DAG is unpaused

log = logging.getLogger("tormenta.microbatch")


def stop_params() -> dict[str, Any]:
    """The stop DAG's trigger form."""
    from airflow.sdk import Param

    return {
        "namespace": Param(DEFAULT_NAMESPACE, type="string", pattern=NAMESPACE_PATTERN, title="Namespace",
                           description="Namespace of the pipeline to stop."),
        "reason": Param("stopped from the Airflow UI", type="string", maxLength=200, title="Reason",
                        description="Recorded with the stop request."),
    }  # fmt: skip


def triggered_params() -> dict[str, Any]:
    """The scheduled triggered runs' form: which namespace's topics each run drains."""
    from airflow.sdk import Param

    return {
        "namespace": Param(DEFAULT_NAMESPACE, type="string", pattern=NAMESPACE_PATTERN, title="Namespace",
                           description="Namespace whose topics each triggered run drains."),
    }  # fmt: skip


def triggered_conf(namespace: str) -> dict[str, Any]:
    """The micro-batch run a scheduled triggered run starts (checked like any trigger)."""
    return {"mode": "triggered", "namespace": namespace}


def sources() -> dict[str, ModuleType]:
    """The DAG's Sources: every kind whose folder has a ``dag.py`` (``kinds/__init__.py``), by folder name."""
    return {kind.folder: module for kind in KINDS.values() if (module := kind_part(kind, "dag")) is not None}


def storm_params() -> dict[str, Any]:
    """The storm DAG's trigger form: a scandal on one page of the running pipeline."""
    from airflow.sdk import Param

    from tormenta.reference import POLITICIANS

    pages = sorted(POLITICIANS)
    return {
        "namespace": Param(DEFAULT_NAMESPACE, type="string", pattern=NAMESPACE_PATTERN, title="Namespace",
                           description="Namespace of the running micro-batch pipeline."),
        "page": Param("pol-03", type="string", enum=pages, title="Page", description="The politician's page of the scandal."),
        "factor": Param(20, type="integer", minimum=2, maximum=1000, title="Factor",
                        description="The page's comments per second are multiplied by this."),
        "minutes": Param(2, type="number", minimum=0.1, maximum=120, title="Minutes",
                         description="How long the storm blows; then the page is back to its rate."),
    }  # fmt: skip


class StormError(ValueError):
    pass


def start_storm(control, page: str, factor: int, minutes: float) -> dict[str, Any]:
    """Set off a storm on the namespace's running pipeline: its social ingestors that read ``page``
    multiply its rate by ``factor`` for ``minutes``, without a restart (they read it from the
    control plane). StormError when no pipeline of the namespace is running."""
    run_id = control.active_run()
    phase = control.state(run_id)["phase"] if run_id else None
    if phase != "running":
        raise StormError(f"no micro-batch pipeline is running in namespace {control.namespace!r}"
                         + (f" (its last run {run_id} is {phase})" if run_id else "") + ": start tormenta_microbatch first")
    return {"run_id": run_id, **control.add_storm(run_id, page, factor, minutes)}


def params() -> dict[str, Any]:
    """The trigger form. Every field has a title, a description and limits; the JSON schema
    rejects anything else before a run exists (so nothing hostile reaches a command line).
    Each source adds its own fields (its ``dag.params()``)."""
    from airflow.sdk import Param

    offered = sources()
    names = list(offered)
    per_source: dict[str, Any] = {}
    for name, module in offered.items():
        fields = module.params()
        if set(fields) & set(per_source):
            raise ValueError(f"source {name}: Params {sorted(set(fields) & set(per_source))} are taken")
        per_source.update(fields)
    own = {
        "interval": Param(DEFAULT_INTERVAL, type="string", pattern=PARAM_PATTERN, minLength=1, maxLength=20,
                          title="Micro-batch interval",
                          description="How often the streaming job takes what arrived (your business's "
                                      "'real time'): ISO 8601 duration (PT1S, PT10S, PT1M) or seconds (2). "
                                      "0.1 s to 1 h. Triggering again with another value hands over from the "
                                      "running run and restarts the query on the same checkpoint."),
        "mode": Param("always-on", type="string", enum=list(STREAM_MODES), title="Mode",
                      description="always-on: the ingestors run and a micro-batch is taken every interval "
                                  "until the run is stopped. triggered: no ingestors run; the query takes "
                                  "every record already in the namespace's topics (put there by ingestors "
                                  "running elsewhere), then the run ends: schedulable (DAG "
                                  "tormenta_microbatch_triggered). real-time: the ingestors run and each record "
                                  "is processed as it arrives (Spark's real-time mode), by the kinds' stateless "
                                  "rules only (geo: validation, dead letters, latest position per device); the "
                                  "interval is not used, and the job holds one task slot per Kafka partition."),
        "sources": Param(names, type="array", minItems=1, uniqueItems=True, examples=names,
                         items={"type": "string", "enum": names}, title="Sources",
                         description="; ".join(f"{name}: {m.SOURCE_TITLE}" for name, m in offered.items()) + "."),
        "max_records_per_batch": Param(200_000, type="integer", minimum=100, maximum=10_000_000,
                                       title="Max records per micro-batch",
                                       description="Spark's maxOffsetsPerTrigger: caps memory per batch when "
                                                   "a backlog builds up."),
        "run_minutes": Param(0, type="integer", minimum=0, maximum=7 * 24 * 60, title="Run for (minutes)",
                             description="0: until stopped (tormenta_microbatch_stop DAG). Otherwise the run "
                                         "stops itself, ingestors first, after this long."),
        "query_version": Param(1, type="integer", minimum=1, maximum=9_999, title="Query version",
                               description="Raise it when the processing itself changes: a new checkpoint. "
                                           "Interval and max records may change on the same version."),
        "namespace": Param(DEFAULT_NAMESPACE, type="string", pattern=NAMESPACE_PATTERN, title="Namespace",
                           description="Prefix of topics and HBase tables (lower-case letters, digits, '_')."),
    }  # fmt: skip
    if set(per_source) & set(own):
        raise ValueError(f"a source's Params take the DAG's own: {sorted(set(per_source) & set(own))}")
    first = ("interval", "mode", "sources")  # the form: these, then each source's fields, then the rest
    return {**{k: own[k] for k in first}, **per_source, **{k: v for k, v in own.items() if k not in first}}


@dataclass
class Plan:
    interval_s: float
    ingestors: list[dict[str, Any]]
    capacity: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [s["name"] for s in self.ingestors]


def plan(p: dict[str, Any], cores: int | None = None) -> Plan:
    """Params -> the ingestors to run (argument lists), the interval and a capacity estimate."""
    interval_s = parse_interval(p["interval"])
    if p.get("mode", "always-on") == "triggered":  # the query alone: it drains what Kafka holds and ends
        return Plan(interval_s=interval_s, ingestors=[], capacity={},
                    warnings=[] if p.get("run_minutes", 0) == 0 else ["run_minutes has no effect on a triggered run"])
    offered = sources()
    unknown = sorted(set(p["sources"]) - set(offered))
    if unknown:
        raise ValueError(f"unknown sources {unknown}: the DAG offers {sorted(offered)}")
    specs: list[dict[str, Any]] = []
    rate_total = 0.0
    weighted_bytes = 0.0
    for name, module in offered.items():
        if name in p["sources"]:
            got, rate = module.ingestors(p, p["namespace"])
            specs += got
            rate_total += rate
            weighted_bytes += rate * module.AVG_EVENT_BYTES
    cap = capacity.estimate(
        rate_total, int(weighted_bytes / rate_total), interval_s,
        cores=cores, ingestors=len(specs),
    )  # fmt: skip
    warnings = list(cap.warnings)
    if p.get("mode") == "real-time":
        from tormenta.contracts import KINDS
        from tormenta.jobs import REALTIME_CHECKPOINT

        lanes = {k.folder: k.realtime for k in KINDS.values()}
        warnings += [f"{name}: its kind has no real-time rule, so this run does not process its events: they wait "
                     "in Kafka for the next always-on or triggered run" for name in p["sources"] if not lanes.get(name)]
        warnings.append("real-time: the interval is not used; each record is processed as it arrives and the query "
                        f"checkpoints every {REALTIME_CHECKPOINT}")  # fmt: skip
    return Plan(interval_s=interval_s, ingestors=specs, capacity=cap.as_dict(), warnings=warnings)


def trigger_problem(conf: dict[str, Any] | None) -> str | None:
    """Why a run triggered with ``conf`` would fail at its ``plan`` task; None if it would not.

    The running run checks a queued run with this before it hands over to it: a trigger that
    cannot run must not take the running pipeline down.
    """
    from tormenta.triggers import TriggerError, check_conf

    declared = params()
    try:
        check_conf(conf, declared)
        plan({**{k: v.value for k, v in declared.items()}, **(conf or {})})
    except (TriggerError, ValueError, KeyError, TypeError) as exc:
        return str(exc)
    return None


def handover_target(queued: list[dict[str, Any]], warned: set[str], log: logging.Logger = log) -> str | None:
    """The queued run (REST API ``dag_runs`` items) to hand over to: the oldest one that can run.

    A queued run that cannot run is logged once as a warning; the pipeline keeps running, and
    that run fails at its ``plan`` task once it gets its turn.
    """
    for run in sorted(queued, key=lambda r: r.get("queued_at") or ""):
        problem = trigger_problem(run.get("conf"))
        if problem is None:
            return run["dag_run_id"]
        if run["dag_run_id"] not in warned:
            warned.add(run["dag_run_id"])
            log.warning("NOT handing over to queued run %s, the pipeline keeps running: %s", run["dag_run_id"], problem)
    return None


# --- watching a running pipeline -----------------------------------------------------------------
def latest_progress(conn, namespace: str, mode: str = "always-on") -> dict[str, Any] | None:
    """Newest micro-batch metrics of the namespace's query (of ``mode``): our result row + Spark's progress."""
    from tormenta import metrics

    return metrics.latest(conn, namespace, query_name(namespace, mode))


def _read_to(end_offsets: list[dict] | None) -> dict[tuple[str, int], int]:
    """Per (topic, partition), the offset a query has read to (a progress's ``endOffsets``)."""
    return {(topic, int(part)): int(offset) for source in end_offsets or []
            for topic, parts in (source or {}).items() for part, offset in parts.items()}  # fmt: skip


def _unread(bootstrap: str, read_to: dict[tuple[str, int], int], at_ms: int | None = None) -> int:
    """Records in Kafka past ``read_to``, summed over its partitions: up to each partition's end,
    or (``at_ms``) up to its first record at or after ``at_ms`` (its end if it has none: Kafka's
    ``offsets_for_times`` gives -1)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "tormenta-lag-probe",
                         "enable.auto.commit": False})  # fmt: skip
    try:
        if at_ms is None:
            parts = [TopicPartition(t, p) for t, p in read_to]
        else:
            parts = consumer.offsets_for_times([TopicPartition(t, p, at_ms) for t, p in read_to], timeout=10)
        unread = 0
        for tp in parts:
            up_to = tp.offset if at_ms is not None and tp.offset >= 0 else consumer.get_watermark_offsets(tp, timeout=10)[1]
            unread += max(0, up_to - read_to[(tp.topic, tp.partition)])
        return unread
    finally:
        consumer.close()


def unread_before(bootstrap: str, progress: dict[str, Any] | None, at_ms: int) -> int | None:
    """Records with a Kafka timestamp before ``at_ms`` that the query has not processed yet, summed
    over every partition it reads (``endOffsets`` of its newest micro-batch, ``latest_progress``);
    None before its first micro-batch. Per partition, not a max over them: one partition past
    ``at_ms`` says nothing of another one still behind it."""
    if not progress or "result" not in progress:
        return None
    read_to = _read_to((progress.get("progress") or {}).get("endOffsets"))
    return _unread(bootstrap, read_to, at_ms) if read_to else None


def consumer_lag(bootstrap: str, end_offsets: list[dict]) -> int | None:
    """Records in Kafka not yet read by the query: log end offsets - offsets of the last batch."""
    read_to = _read_to(end_offsets)
    return _unread(bootstrap, read_to) if read_to else None


def describe(progress: dict[str, Any] | None, lag: int | None, now_ms: int | None = None) -> dict[str, Any]:
    """One line a person reads in the supervisor's log: freshness, lag, last batch."""
    now_ms = now_ms or int(time.time() * 1000)
    if not progress or "result" not in progress:
        return {"batches": 0, "lag": lag}
    r = progress["result"]
    return {
        "last_batch": r.get("label"),
        "written_s_ago": round((now_ms - r.get("written_at", now_ms)) / 1000, 1),
        "newest_event_age_s": round((now_ms - r["max_event_time"]) / 1000, 1) if r.get("max_event_time") else None,
        "rows": r.get("read"),
        "dead": r.get("dead"),
        "p50_ms": (r.get("latency_ms") or {}).get("p50"),
        "lag": lag,
    }


# --- the supervisor ------------------------------------------------------------------------------
@dataclass
class Supervision:
    """What the supervisor task needs from the outside world (injected; faked in unit tests)."""

    control: Any  # tormenta.control.ControlPlane
    run_id: str
    ingestors: list[str]
    handover: Callable[[], bool]  # a newer run of the DAG is queued
    failed_tasks: Callable[[], list[str]]  # tasks of this run that failed for good
    watch: Callable[[], dict[str, Any]]  # freshness / lag, for the log
    deadline: float | None = None  # monotonic time to stop at (run_minutes)
    poll_s: float = 2.0
    report_every_s: float = 30.0
    ingestors_timeout_s: float = 300.0
    drain_timeout_s: float = 900.0
    outage_s: float = 900.0  # how long HBase or the Airflow API may be away before supervision gives up
    stuck_after_s: float = 600.0  # no batch written for this long while Kafka holds unread records: stuck
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    log: logging.Logger = log


class SupervisionError(RuntimeError):
    pass


class RunFailed(SupervisionError):
    """The run stopped in order because a part of it failed (or it was stuck): final, a retry of
    the supervisor would only find the same failure again."""


def patient(s: Supervision, what: str, call: Callable[[], Any]) -> Any:
    """``call()``, retried with backoff (poll_s doubling to 30 s) for up to ``s.outage_s``.

    The supervisor reads HBase and Airflow's API every few seconds for hours; a region server
    restart or a busy API server must not end the supervision, or nobody would hand over, stop
    at ``run_minutes`` or stop in order any more.
    """
    delay, started = s.poll_s, s.clock()
    while True:
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - any outage of a dependency; given up on below
            if s.clock() - started >= s.outage_s:
                raise SupervisionError(f"{what}: still failing after {s.outage_s:.0f}s ({exc})") from exc
            s.log.warning("%s failed (%s); retrying in %.0fs", what, exc, delay)
            s.sleep(delay)
            delay = min(delay * 2, 30.0)


def stuck_reason(view: dict[str, Any], running_s: float, stuck_after_s: float) -> str | None:
    """Why the pipeline is stuck, from the supervisor's view (``describe``), or None.

    Stuck: Kafka holds records the query has not read, and no batch was written for
    ``stuck_after_s`` (or none at all since the supervisor started that long ago). The newest
    batch may be an earlier run's: a pipeline restarted after an hour off, with a backlog, is
    quiet for as long as this run has been running, not for the hour.
    """
    lag = view.get("lag")
    if not isinstance(lag, int) or lag <= 0:
        return None
    quiet = view.get("written_s_ago")
    if quiet is None:
        quiet = running_s if not view.get("batches") and "last_batch" not in view else None
    else:
        quiet = min(quiet, running_s)
    if quiet is not None and quiet >= stuck_after_s:
        return f"stuck: no micro-batch written for {quiet:.0f}s while {lag} record(s) wait in Kafka"
    return None


def supervise(s: Supervision) -> dict[str, Any]:
    """Run until a stop is due, then stop in order: ingestors, then a drained streaming job.

    Stop causes: a stop request (stop DAG), a newer queued run (handover: e.g. a new interval),
    ``run_minutes`` elapsed, a part of the run that failed for good, or the streaming job that
    ended on its own (a triggered run, once it drained Kafka).
    """
    started = last_report = s.clock()
    failure: str | None = None
    while True:
        # one read of the run's control row per poll: the stop request and who stopped already
        state = patient(s, "reading the stop request", lambda: s.control.state(s.run_id))
        reason = state["stop"]
        if not reason:
            failed = patient(s, "reading the task states", s.failed_tasks)
            if failed:
                failure = reason = f"task(s) failed for good: {', '.join(sorted(failed))}"
            elif "stream" in state["stopped"]:
                reason = "the streaming job ended: it processed what Kafka held (a triggered run)"
            elif s.deadline is not None and s.clock() >= s.deadline:
                reason = "run_minutes elapsed"
            elif patient(s, "counting queued runs", s.handover):
                reason = "handover: a newer run of the micro-batch DAG is queued"
            if reason:
                patient(s, "requesting the stop", lambda why=reason: s.control.request_stop(s.run_id, why))
        if reason:
            break
        if s.clock() - last_report >= s.report_every_s:
            last_report = s.clock()
            try:
                view = s.watch()
                s.log.info("pipeline: %s", json.dumps(view))
            except Exception as exc:  # noqa: BLE001 - watching must never stop the pipeline
                s.log.warning("could not read progress: %s", exc)
                view = {}
            why = stuck_reason(view, s.clock() - started, s.stuck_after_s)
            if why:
                failure = why
                patient(s, "requesting the stop", lambda why=why: s.control.request_stop(s.run_id, why))
                continue  # the loop reads the stop request back and stops in order
        s.sleep(s.poll_s)

    s.log.info("stopping (%s): ingestors first", reason)
    t0 = s.clock()
    pending = set(s.ingestors)
    while pending and s.clock() - t0 < s.ingestors_timeout_s:
        pending -= set(patient(s, "reading the run's state", lambda: s.control.state(s.run_id))["stopped"])
        if pending:
            s.sleep(s.poll_s)
    if pending:
        s.log.warning("ingestors not confirmed stopped after %.0fs: %s", s.ingestors_timeout_s, sorted(pending))
    s.log.info("ingestors stopped; the streaming job drains what is in Kafka, then stops")
    patient(s, "requesting the stream's stop", lambda: s.control.request_stream_stop(s.run_id))
    t1 = s.clock()
    while "stream" not in patient(s, "reading the run's state", lambda: s.control.state(s.run_id))["stopped"]:
        if s.clock() - t1 > s.drain_timeout_s:
            raise SupervisionError(f"streaming job did not confirm its stop within {s.drain_timeout_s:.0f}s")
        if "stream" in patient(s, "reading the task states", s.failed_tasks):
            break
        s.sleep(s.poll_s)
    if failure:  # kept: a retry of this task finds the stop requested, and must not end green
        patient(s, "recording the failure", lambda: s.control.mark_failed(s.run_id, "supervise", {"reason": failure}))
    patient(s, "marking the run stopped", lambda: s.control.finish(s.run_id))
    state = patient(s, "reading the run's state", lambda: s.control.state(s.run_id))
    s.log.info("pipeline stopped: %s", json.dumps(state["stopped"], sort_keys=True))
    failed = state.get("failed") or {}
    if failure or failed:  # this try's failure, or any part's (an earlier try of this task included)
        parts = "; ".join(f"{name}: {doc.get('reason') or doc}" for name, doc in sorted(failed.items()))
        raise RunFailed(failure or f"parts of the run failed: {parts}")
    return {"reason": reason, "stopped": sorted(state["stopped"]), "unconfirmed": sorted(pending)}


def stop_stalled(state: dict[str, Any], run_state: str | None, supervise_state: str | None) -> str | None:
    """Why a requested stop of a run can no longer complete, or None while it still can.

    The stop DAG waits for the run's phase ``stopped``, which only the run's supervisor writes:
    if the run already ended, or its supervisor failed, waiting longer cannot help.
    """
    if state.get("phase") == "stopped":
        return None
    so_far = f"stopped so far: {sorted(state.get('stopped') or {}) or 'nothing'}"
    failed = state.get("failed") or {}
    if failed:
        so_far += f"; failed: {sorted(failed)}"
    if run_state in ("success", "failed"):
        return f"the run ended ({run_state}) without confirming the stop; {so_far}"
    if supervise_state in ("failed", "upstream_failed"):
        return f"the run's supervise task is {supervise_state}, so nobody completes the stop; {so_far}"
    return None

