"""Micro-batch streaming job: Kafka -> business rules + HBase enrichment -> HBase, every N seconds.

    spark-submit --jars <connector jars> spark_jobs/streaming.py \
        --bootstrap 127.0.0.1:9092 --interval "1 second" --max-offsets-per-trigger 200000 \
        --checkpoint-root var/checkpoints --query-version 1

One checkpoint per query version (``<root>/<query>/v<version>``): the trigger interval and
``maxOffsetsPerTrigger`` may change between restarts of the same checkpoint; a change of the
processing itself gets a new ``--query-version``. ``failOnDataLoss`` stays true: offsets that
aged out while the job was down stop the query loudly instead of being skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import sys
import threading
import time

from spark_jobs.cli_args import hbase_endpoint
from tormenta import failures
from tormenta.intervals import parse_interval, spark_interval
from tormenta.jobs import StreamArgs

log = logging.getLogger("tormenta.streaming")

MAX_QUERY_VERSION = 9_999  # seq = version * 1e9 + batch id stays below 2**53 (safe in JSON)
CONTROL_POLL_SECONDS = 2.0  # how often the driver reads the control plane for a stop request
STOP_POLL_SECONDS = 0.5  # how often it looks for a stop-now (SIGTERM, its starter gone)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The options of ``tormenta.jobs.StreamArgs`` (what the DAG builds), and the job's checks."""
    p = StreamArgs.parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    if not args.checkpoint_root:
        p.error("the following arguments are required: --checkpoint-root")
    try:
        args.interval_seconds = parse_interval(args.interval)
    except ValueError as exc:
        p.error(str(exc))
    if not 1 <= args.query_version <= MAX_QUERY_VERSION:
        p.error(f"--query-version must be in [1, {MAX_QUERY_VERSION}]")
    if args.max_offsets_per_trigger < 1:
        p.error("--max-offsets-per-trigger must be >= 1")
    from tormenta.contracts import KINDS, check_namespace, query_name, topics_for

    try:
        check_namespace(args.namespace)
    except ValueError as exc:
        p.error(f"--namespace: {exc}")
    args.topics = topics_for(args.namespace)
    for item in filter(None, args.topic_map.split(",")):
        kind_name, _, topic = item.partition("=")
        if kind_name not in KINDS or not re.fullmatch(r"[A-Za-z0-9._\-]{1,200}", topic):
            p.error(f"--topic-map: bad entry {item!r}")
        args.topics = {t: k for t, k in args.topics.items() if k.name != kind_name}
        args.topics[topic] = KINDS[kind_name]
    if args.control_run is not None and not re.fullmatch(r"[A-Za-z0-9_.:+\-]{1,250}", args.control_run):
        p.error("--control-run: not an Airflow run id")
    args.query_name = args.query_name or query_name(args.namespace, args.mode)
    if args.mode == "real-time":
        from spark_jobs.pipeline import realtime_topics

        lanes = realtime_topics(args.topics)
        if not lanes:
            p.error("--mode real-time: no kind this query reads has a real-time rule (EventKind.realtime)")
        args.skipped_topics = sorted(set(args.topics) - set(lanes))
        args.topics = lanes
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,100}", args.query_name):
        p.error("--query-name may only contain letters, digits, '_', '-', '.'")
    return args


def checkpoint_dir(root: str, query: str, version: int) -> str:
    from tormenta.settings import join

    return join(root, query, f"v{version}")


def query_shape(spark, args, endpoint, refs) -> dict:
    """What a checkpoint's query must keep across restarts (``tormenta.checkpoints``): the
    topics and event contracts it reads, and a fingerprint of its processing: the analyzed plan
    of a micro-batch over no rows, built with a fixed label. The interval and the batch size
    limit are left out: they may change on one checkpoint."""
    from spark_jobs.context import BatchContext
    from spark_jobs.pipeline import batch_mutations, classified_batch, realtime_mutations

    empty = spark.createDataFrame([], KAFKA_SOURCE_SCHEMA)
    if args.mode == "real-time":
        plan = realtime_mutations(empty, realtime_context(args, endpoint), refs.get(), args.topics)
    else:
        ctx = BatchContext(label="s0000000000000", seq=0, endpoint=endpoint, namespace=args.namespace)
        plan = batch_mutations(classified_batch(empty, ctx, args.topics), ctx, refs.get(), args.topics)
    key = "spark.sql.debug.maxToStringFields"  # the plan's text in full: by default, 25 fields and "... N more"
    before = spark.conf.get(key, None)
    spark.conf.set(key, "1000000")
    try:
        text = plan._jdf.queryExecution().analyzed().treeString()
    finally:
        spark.conf.unset(key) if before is None else spark.conf.set(key, before)
    return plan_fingerprint(text, args)


def plan_fingerprint(text: str, args) -> dict:
    """Strip what differs between two drivers running the same code: expression ids, temporary
    view names, JVM lambda class names and object identities (``Lambda$2306/0x7f..@76a7f5b8``),
    and partition counts, which follow the cores the driver was given."""
    import hashlib

    text = re.sub(r"Repartition(ByExpression)?( [^\n]*?)?\b\d+, (true|false)", r"Repartition\1\2 <n>, \3", text)
    text = re.sub(r"#\d+L?", "", text)
    text = re.sub(r"[0-9a-f]{32}", "<id>", text)
    text = re.sub(r"\$Lambda\$\d+(/0x[0-9a-f]+)?(@[0-9a-f]+)?", "$Lambda", text)
    text = re.sub(r"@[0-9a-f]{4,}\b", "", text)
    return {
        "query": args.query_name,
        "sources": {topic: f"{kind.name} v{kind.version}" for topic, kind in sorted(args.topics.items())},
        "processing": hashlib.sha256(text.encode()).hexdigest()[:16],
    }


class RealtimeSlots(RuntimeError):
    """Fewer task slots than a real-time query has Kafka partitions to read."""


def check_realtime_slots(spark, args) -> None:
    """Real-time mode runs one task per Kafka partition, all at once, for the whole batch: with
    fewer slots the partitions left over are not read until a slot frees, at the batch's end
    (seen: two of four partitions unread for minutes on ``local[2]``). Refuse that up front."""
    from confluent_kafka.admin import AdminClient

    meta = AdminClient({"bootstrap.servers": args.bootstrap}).list_topics(timeout=30)
    parts = sum(len(meta.topics[t].partitions) for t in args.topics if t in meta.topics)
    slots = spark.sparkContext.defaultParallelism
    if slots < parts:
        raise RealtimeSlots(f"real-time mode reads {parts} Kafka partitions ({', '.join(sorted(args.topics))}) with "
                            f"one long task each, but this driver has {slots} task slot(s): give it {parts} "
                            "(a local master local[<n>], or executor cores)")  # fmt: skip


def realtime_context(args, endpoint):
    """The real-time lane's one context: its rows carry ``d:batch`` = ``realtime-v<version>``."""
    from spark_jobs.context import BatchContext

    return BatchContext(label=f"realtime-v{args.query_version}", seq=0, endpoint=endpoint, namespace=args.namespace)


KAFKA_SOURCE_SCHEMA = ("key binary, value binary, topic string, partition int, offset bigint, "
                       "timestamp timestamp, timestampType int")  # fmt: skip


def batch_seq(version: int, batch_id: int) -> int:
    return version * 1_000_000_000 + batch_id


def build_listener(endpoint, query_name: str, version: int, namespace: str, realtime: bool = False):
    """StreamingQueryListener storing Spark's own progress of every batch next to our metrics. In
    real-time mode there is no ``foreachBatch`` to store a result: the progress of each long
    batch (one checkpoint interval) stores one, with the rows it read, for the supervisor."""
    from pyspark.sql.streaming import StreamingQueryListener

    from tormenta import metrics

    class MetricsListener(StreamingQueryListener):
        def onQueryStarted(self, event):  # noqa: N802 - Spark's API
            log.warning("query started: id=%s run=%s", event.id, event.runId)

        def onQueryProgress(self, event):  # noqa: N802
            p = event.progress
            if p.name != query_name:
                return
            if not realtime and "addBatch" not in (p.durationMs or {}):
                # An idle trigger's report (Spark sends one every noDataProgressEventInterval) has
                # the last batch's id: stored, it would overwrite that batch's own progress.
                return
            doc = {
                "batchId": p.batchId, "numInputRows": p.numInputRows,
                "inputRowsPerSecond": p.inputRowsPerSecond, "processedRowsPerSecond": p.processedRowsPerSecond,
                "durationMs": dict(p.durationMs or {}), "timestamp": p.timestamp,
                # offsets this batch read up to: consumer lag = log end offset - these
                "endOffsets": [json.loads(s.endOffset) if isinstance(s.endOffset, str) else s.endOffset
                               for s in (p.sources or [])],
            }  # fmt: skip
            try:
                with endpoint.session() as conn:
                    metrics.write_progress(conn, namespace, query_name, batch_seq(version, p.batchId), doc)
                    if realtime:
                        metrics.write_result(conn, namespace, query_name, batch_seq(version, p.batchId), {
                            "label": f"r{batch_seq(version, p.batchId):013d}", "mode": "real-time",
                            "read": p.numInputRows, "written_at": int(time.time() * 1000)})  # fmt: skip
            except Exception:  # metrics must never stop the pipeline
                log.exception("could not store progress of batch %s", p.batchId)

        def onQueryIdle(self, event):  # noqa: N802
            pass

        def onQueryTerminated(self, event):  # noqa: N802
            log.warning("query terminated: id=%s exception=%s", event.id, event.exception)

    return MetricsListener()


class StopNow:
    """Whether the driver must stop at once, without draining, and why.

    Two things ask for that: a SIGTERM (Airflow's ``on_kill`` when a user marks the task failed
    or success, or the run failed) and the loss of the process that started ``spark-submit``
    (an Airflow task process killed with SIGKILL, a worker gone). Without the second, a driver
    started in its own session outlives its task: an orphan still writing HBase next to the
    retry. Either way the query stops where it is; the batch in flight is not committed and
    runs again when the query resumes from its checkpoint. A timer ends the driver after
    ``STOP_NOW_BOUND_S`` even if stopping hangs.
    """

    def __init__(self) -> None:
        self.reason: str | None = None
        self._owner = _owner_process()
        self._timer: threading.Timer | None = None

    def install(self) -> StopNow:
        signal.signal(signal.SIGTERM, self._on_signal)
        return self

    def _on_signal(self, signum, frame) -> None:  # runs in the main thread, between two bytecodes
        self._stop(f"{signal.Signals(signum).name} received")

    def _stop(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            self._timer = threading.Timer(failures.STOP_NOW_BOUND_S, _end_driver_now, args=(reason,))
            self._timer.daemon = True
            self._timer.start()

    def __call__(self) -> str | None:
        if self.reason is None and self._owner is not None and not _alive(self._owner):
            self._stop(f"the process that started this driver (pid {self._owner.pid}) is gone")
        return self.reason


def _owner_process():
    """The process that ran spark-submit: the parent of the driver JVM (spark-submit execs it)."""
    import psutil

    try:
        jvm = psutil.Process(os.getppid())
        if "java" not in jvm.name():
            return None  # not started by spark-submit (a test calling main() in process)
        return jvm.parent()
    except psutil.Error:
        return None


def _alive(proc) -> bool:
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _end_driver_now(reason: str) -> None:
    """Last resort of a stop that did not return in time: the driver JVM, then this process."""
    log.error("the query did not stop within %ss of the stop (%s): ending the driver", failures.STOP_NOW_BOUND_S, reason)
    if _owner_process() is not None:  # our parent is the driver JVM
        with contextlib.suppress(ProcessLookupError):
            os.kill(os.getppid(), signal.SIGKILL)
    os._exit(failures.EXIT_STOPPED)


def wait_for_stop(query, stop_now: StopNow, control=None, run_id: str | None = None,
                  run_seconds: float = 0) -> str | None:  # fmt: skip
    """Run until one of: the supervisor asks the stream to stop (after the ingestors stopped),
    ``run_seconds`` passed, ``stop_now`` says so, or the query ends on its own (a triggered query,
    once it processed what Kafka held when it started). The first two drain: every record already
    in Kafka is processed before the query stops, and None is returned. A stop-now stops the
    query as it is and returns its reason.
    """
    deadline = time.monotonic() + run_seconds if run_seconds else None
    next_read = 0.0
    while query.isActive:
        why = stop_now()
        if why:
            log.warning("stopping the query now (%s), without draining: a batch in flight is not committed "
                        "and runs again when the query resumes from its checkpoint", why)  # fmt: skip
            query.stop()
            return why
        requested = False
        if control is not None and time.monotonic() >= next_read:
            next_read = time.monotonic() + CONTROL_POLL_SECONDS
            try:
                requested = control.stream_stop_requested(run_id)
            except Exception as exc:  # noqa: BLE001 - HBase away: the query goes on, asked again next poll
                log.warning("control plane not readable (%s); asking again in %ss", exc, CONTROL_POLL_SECONDS)
        if requested or (deadline and time.monotonic() > deadline):
            log.warning("stop requested: draining what is in Kafka, then stopping the query")
            query.processAllAvailable()
            query.stop()
            return None
        query.awaitTermination(STOP_POLL_SECONDS)
    return stop_now()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    stop_now = StopNow().install()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)  # one line per callback otherwise
    from spark_jobs.context import BatchContext
    from spark_jobs.pipeline import process_batch
    from spark_jobs.session import get_session
    from tormenta import reference

    endpoint = hbase_endpoint(args)
    refs = reference.ensure(endpoint, args.namespace)  # tables + reference data; idempotent
    spark = get_session(f"tormenta-stream-{args.query_name}")
    # Micro-batches are small and frequent: adaptive re-planning costs more than it saves, and
    # one shuffle partition per core keeps the tasks (and HBase flushes) per batch few.
    spark.conf.set("spark.sql.adaptive.enabled", "false")
    spark.conf.set("spark.sql.shuffle.partitions", str(spark.sparkContext.defaultParallelism))
    spark.streams.addListener(build_listener(endpoint, args.query_name, args.query_version, args.namespace,
                                             realtime=args.mode == "real-time"))  # fmt: skip
    if getattr(args, "skipped_topics", None):
        log.warning("real-time mode reads only the kinds with a real-time rule; not read: %s", args.skipped_topics)

    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", args.bootstrap)
        .option("subscribe", ",".join(sorted(args.topics)))
        .option("startingOffsets", args.starting_offsets)
        .option("failOnDataLoss", "true")
    )
    if args.mode != "real-time":  # real-time mode refuses it: "not compatible with real time mode"
        reader = reader.option("maxOffsetsPerTrigger", args.max_offsets_per_trigger)
    stream = reader.load()

    def on_batch(df, batch_id: int) -> None:
        ctx = BatchContext(label=f"s{batch_seq(args.query_version, batch_id):013d}",
                           seq=batch_seq(args.query_version, batch_id), endpoint=endpoint,
                           namespace=args.namespace)  # fmt: skip
        t0 = time.monotonic()
        res = process_batch(df, ctx, refs, metrics_query=args.query_name, metrics_run=args.control_run, topics=args.topics)
        # One JSON line per batch on stdout: what supervisors, tests and the bench read.
        print(json.dumps({"batch": batch_id, "label": res.label, "read": res.read, "good": res.good,
                          "dead": res.dead, "dead_by_reason": res.dead_by_reason,
                          "latency_ms": res.latency_ms, "seconds": round(time.monotonic() - t0, 3)}),
              flush=True)  # fmt: skip

    from tormenta import checkpoints
    from tormenta.control import ControlPlane, RoleError
    from tormenta.settings import join

    checkpoint = checkpoint_dir(args.checkpoint_root, args.query_name, args.query_version)
    owner = {"query": args.query_name, "run": args.control_run}
    guard = contextlib.ExitStack()
    # On a shared file system the locks live in ZooKeeper; losing that session means another
    # driver may take the checkpoint over, so this one stops its query as on a SIGTERM.
    locks = {"zookeeper": endpoint.zookeeper_quorum, "on_lost": lambda: os.kill(os.getpid(), signal.SIGTERM)}
    try:  # one query per namespace, one driver per checkpoint, the same query as the checkpoint's
        guard.enter_context(checkpoints.exclusive(join(args.checkpoint_root, "_namespaces", args.namespace),
                                                  owner, what="namespace", **locks))  # fmt: skip
        guard.enter_context(checkpoints.exclusive(checkpoint, owner, **locks))
        ControlPlane(endpoint, args.namespace).claim_role("stream")
        if args.mode == "real-time":
            check_realtime_slots(spark, args)
        shape = query_shape(spark, args, endpoint, refs)
        if checkpoints.check_shape(checkpoint, shape, checkpoints.files_for(checkpoint, spark)) == "adopted":
            log.warning("checkpoint %s had no recorded query shape: recorded this query's %s", checkpoint, shape)
    except (checkpoints.CheckpointError, RoleError, RealtimeSlots) as exc:
        guard.close()
        print(f"{failures.FATAL_PREFIX} {exc}", file=sys.stderr, flush=True)
        return failures.EXIT_FATAL
    with guard:
        return run_query(spark, stream, on_batch, args, endpoint, checkpoint, guard, stop_now, refs)


def run_query(spark, stream, on_batch, args, endpoint, checkpoint: str, locks: contextlib.ExitStack,
              stop_now: StopNow, refs=None) -> int:  # fmt: skip
    """Start the query on its (locked, shape-checked) checkpoint and run it until it should stop.

    The locks go as soon as the query has stopped, before the stop is confirmed: the run taken
    over to may start its driver right after the confirmation."""
    realtime = realtime_context(args, endpoint) if args.mode == "real-time" else None
    if realtime is not None:  # the query's plan: each record's mutations, not the raw records
        from spark_jobs.pipeline import realtime_mutations

        stream = realtime_mutations(stream, realtime, refs.get(), args.topics)
    writer = stream.writeStream.queryName(args.query_name).option("checkpointLocation", checkpoint)
    if realtime is not None:  # each record as it arrives, through the JVM foreach sink
        from spark_jobs import jvm_sink
        from tormenta.jobs import REALTIME_CHECKPOINT

        writer = jvm_sink.foreach_writer(writer, realtime.settings)
        query = writer.outputMode("update").trigger(realTime=REALTIME_CHECKPOINT).start()
        log.warning("query %s v%d running in real-time mode (checkpoint every %s), checkpoint %s",
                    args.query_name, args.query_version, REALTIME_CHECKPOINT, checkpoint)  # fmt: skip
    elif args.mode == "triggered":  # what is in Kafka now, in batches of at most maxOffsetsPerTrigger, then it ends
        query = writer.foreachBatch(on_batch).trigger(availableNow=True).start()
        log.warning("query %s v%d running triggered (what Kafka holds now, then it ends), checkpoint %s",
                    args.query_name, args.query_version, checkpoint)  # fmt: skip
    else:
        query = writer.foreachBatch(on_batch).trigger(processingTime=spark_interval(args.interval_seconds)).start()
        log.warning("query %s v%d running every %.3fs, checkpoint %s", args.query_name, args.query_version,
                    args.interval_seconds, checkpoint)  # fmt: skip
    control = None
    if args.control_run:
        from tormenta.control import ControlPlane

        control = ControlPlane(endpoint, args.namespace)
    stopped_now = None
    try:
        if args.until_idle and args.mode == "always-on":
            query.processAllAvailable()
            query.stop()
        else:
            stopped_now = wait_for_stop(query, stop_now, control, args.control_run, args.run_seconds)
    except Exception:
        if query.exception() is None and not stop_now():
            raise  # not the query's own failure, nor a stop-now cutting a call short
    finally:
        if query.isActive:
            query.stop()
        locks.close()
    stopped_now = stopped_now or stop_now()
    if stopped_now:  # not a clean stop: no "stopped" report, and the task is being killed anyway
        log.warning("query %s stopped (%s); its checkpoint is free", args.query_name, stopped_now)
        return failures.EXIT_STOPPED
    if control is not None and query.exception() is None:
        control.mark_stopped(args.control_run, "stream", {
            "query": args.query_name, "version": args.query_version, "last_batch": last_batch(query.lastProgress),
        })  # fmt: skip
    if query.exception():
        text = str(query.exception())
        print(f"query failed: {text}", file=sys.stderr)
        meaning = failures.deterministic(text)
        if meaning:  # the operator fails the task without retries, with this line as the reason
            print(f"{failures.FATAL_PREFIX} query {args.query_name} v{args.query_version}: {meaning}",
                  file=sys.stderr, flush=True)  # fmt: skip
            return failures.EXIT_FATAL
        return 1
    spark.stop()
    return 0


def last_batch(progress: dict | None) -> int | None:
    """The id of the query's last processed micro-batch, from its last progress. An idle trigger
    (no new data) reports the id of the *next* batch with no input rows: the one before it is the
    last processed (found by the e2e handover test: run 1 said 51, run 2 then ran batch 51)."""
    if not progress:
        return None
    batch_id = int(progress["batchId"]) - (0 if progress.get("numInputRows") else 1)
    return batch_id if batch_id >= 0 else None


if __name__ == "__main__":
    sys.exit(main())
