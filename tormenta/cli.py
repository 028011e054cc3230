"""``tormenta`` command line: the local stack, the JVM jars, the smoke pipeline, the Airflow CLI.

    tormenta stack up|down|status|logs [SERVICE] [-n LINES]
    tormenta jars [--force]
    tormenta smoke [--events N]
    tormenta demo                 # start the micro-batch DAG, run one batch window over its events
    tormenta prepare [--namespace NS]   # Kafka topics, HBase tables, reference data (idempotent)
    tormenta stream [--interval "1 second" ...]   # the streaming job, in the foreground
    tormenta capacity --rate 5000 [--bytes 420] [--interval PT1S]
    tormenta airflow ARGS...      # the airflow CLI with the stack's AIRFLOW_HOME
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import deque

from tormenta import jvm, smoke, stack
from tormenta.contracts import DEFAULT_NAMESPACE
from tormenta.intervals import DEFAULT_INTERVAL
from tormenta.settings import load


def _print_where_to_look() -> None:
    from tormenta.stack import airflow_setup

    s = load()
    print()
    print(f"Airflow UI     {s.airflow_url}   (user: admin)")
    print(f"Passwords      {airflow_setup.passwords_file(s)}  (mode 0600)")
    print(f"Kafka          {s.kafka_bootstrap}")
    print(f"HBase Thrift   {s.bind_host}:{s.thrift_port}")
    print(f"Logs           {s.logs_dir}/")
    print("Status         tormenta stack status   |   stop: tormenta stack down")


def cmd_stack(args: argparse.Namespace) -> int:
    unknown = sorted(set(args.services) - set(stack.ALL_PROCESSES))
    if unknown:
        print(f"error: unknown service(s) {unknown}; known: {', '.join(stack.ALL_PROCESSES)}", file=sys.stderr)
        return 2
    if args.action == "up":
        stack.up(timeout=args.timeout)
        _print_status()
        _print_where_to_look()
    elif args.action == "down":
        stopped = stack.down(args.services or None)
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    elif args.action == "status":
        return 0 if _print_status() else 3
    elif args.action == "logs":
        s = load()
        names = args.services or stack.ALL_PROCESSES
        for name in names:
            path = s.logs_dir / f"{name}.log"
            print(f"==> {path} <==")
            if path.exists():
                with path.open(errors="replace") as fh:
                    sys.stdout.writelines(deque(fh, maxlen=args.lines))
    return 0


def _print_status() -> bool:
    rows = stack.status()
    print(f"{'SERVICE':<22} {'PID':>8} {'HEALTH':<9} {'PSS MiB':>8}  ENDPOINT")
    for r in rows:
        health = "healthy" if r.healthy else ("down" if r.pid is None else "starting")
        rss = f"{r.pss_mb:.0f}" if r.pss_mb is not None else "-"
        print(f"{r.name:<22} {r.pid or '-':>8} {health:<9} {rss:>8}  {r.endpoint}")
    return all(r.healthy for r in rows)


def cmd_jars(args: argparse.Namespace) -> int:
    jvm.ensure_all(force=args.force)
    for name, component in jvm.COMPONENTS.items():
        if jvm.is_resolved(name) or not component.on_demand:
            print(f"{name:<6} {len(jvm.jar_paths(name)):>4} jars  {jvm.jars_dir(name)}")
    return 0


def cmd_smoke(args: argparse.Namespace) -> int:
    from tormenta.airflow_api import local_client

    client = local_client()
    client.wait_for_dag(smoke.DAG_ID)
    client.set_paused(smoke.DAG_ID, False)
    run = client.trigger(smoke.DAG_ID, conf={"events": args.events})
    run_id = run["dag_run_id"]
    print(f"[smoke] triggered {smoke.DAG_ID} run {run_id}", file=sys.stderr, flush=True)
    final = client.wait_for_run(
        smoke.DAG_ID,
        run_id,
        timeout=args.timeout,
        on_change=lambda r: print(f"[smoke] run is {r['state']}", file=sys.stderr, flush=True),
    )
    for ti in client.task_instances(smoke.DAG_ID, run_id):
        print(f"  {ti['task_id']:<24} {ti['state']}")
    url = f"{load().airflow_url}/dags/{smoke.DAG_ID}/runs/{run_id}"
    print(f"[smoke] {final['state']}: {url}")
    return 0 if final["state"] == "success" else 1


def cmd_demo(args: argparse.Namespace) -> int:
    """Start the micro-batch DAG with its default Params, then run one batch window over the
    same events and show whether both paths agree: what `make up` ends with."""
    import datetime as dt
    import time

    from tormenta import batch, metrics, microbatch
    from tormenta.airflow_api import local_client
    from tormenta.contracts import table_name
    from tormenta.hbase import HBaseEndpoint

    s = load()
    client = local_client()
    for dag_id in (microbatch.DAG_ID, microbatch.STOP_DAG_ID, batch.DAG_ID):
        client.wait_for_dag(dag_id)
        client.set_paused(dag_id, False)
    runs = client.request("GET", f"/api/v2/dags/{microbatch.DAG_ID}/dagRuns?state=running&state=queued")["dag_runs"]
    if runs:
        run = runs[0]
        print(f"[demo] micro-batch pipeline already running: {run['dag_run_id']}", flush=True)
    else:
        run = client.trigger(microbatch.DAG_ID)
        print(f"[demo] started {microbatch.DAG_ID} with its default Params: {run['dag_run_id']}", flush=True)
    run_id = run["dag_run_id"]
    endpoint = HBaseEndpoint(s.bind_host, s.thrift_port)
    deadline = time.monotonic() + args.timeout

    def still_running() -> bool:
        state = client.dag_run(microbatch.DAG_ID, run_id)["state"]
        if state not in ("running", "queued"):
            print(f"[demo] the micro-batch run is {state}; see its task logs in the UI", file=sys.stderr)
        return state in ("running", "queued")

    def wait_for(probe, every: float, gave_up: str):
        """``probe()``'s first value that is not None, read every ``every`` seconds while the run
        runs; None (said why) once the run ended or the deadline passed."""
        while True:
            if time.monotonic() > deadline:
                print(f"[demo] {gave_up}; see the run in the UI", file=sys.stderr)
                return None
            if not still_running():
                return None
            time.sleep(every)
            with endpoint.session() as conn:
                value = probe(conn)
            if value is not None:
                return value

    def own_batch(conn) -> dict | None:  # a batch of this run (the namespace may hold an older run's)
        if table_name(metrics.TABLE, DEFAULT_NAMESPACE).encode() not in conn.tables():
            return None
        mine = metrics.run_results(conn, DEFAULT_NAMESPACE, run_id, limit=1)
        return {"result": mine[0]} if mine else None

    progress = wait_for(own_batch, 3, "no micro-batch stored yet")
    if progress is None:
        return 1
    print(f"[demo] micro-batches are landing in HBase: {microbatch.describe(progress, None)}", flush=True)

    # One batch window over the same events: whole minutes from the first minute with social
    # comments since the run started (its ingestors start some time after the run does; a window
    # opening at the run's start can hold no event at all on a slow machine).
    started = dt.datetime.fromisoformat(client.dag_run(microbatch.DAG_ID, run_id)["start_date"])
    since_ms = int(started.astimezone(dt.UTC).replace(second=0, microsecond=0).timestamp() * 1000)
    print("[demo] waiting for the run's first social comments to be stored", flush=True)
    first_ms = wait_for(lambda conn: batch.first_social_minute(conn, DEFAULT_NAMESPACE, since_ms), 5,
                        "no social comment stored yet")  # fmt: skip
    if first_ms is None:
        return 1
    start = dt.datetime.fromtimestamp(first_ms / 1000, dt.UTC)
    end = max(start + dt.timedelta(minutes=1), dt.datetime.now(dt.UTC).replace(second=0, microsecond=0))
    wait = (end - dt.datetime.now(dt.UTC)).total_seconds()
    if wait > 0:
        print(f"[demo] waiting {wait:.0f}s for the window's minute of events to close", flush=True)
        time.sleep(wait)
    conf = {"window_start": start.strftime("%Y-%m-%dT%H:%MZ"), "window_end": end.strftime("%Y-%m-%dT%H:%MZ")}
    brun = client.trigger(batch.DAG_ID, conf=conf)["dag_run_id"]
    print(f"[demo] batch window {conf['window_start']} -> {conf['window_end']}: {brun}", flush=True)
    final = client.wait_for_run(batch.DAG_ID, brun, timeout=args.timeout,
                                on_change=lambda r: print(f"[demo] batch run is {r['state']}", flush=True))  # fmt: skip
    if final["state"] != "success":
        print(f"[demo] batch run {final['state']}; see its task logs in the UI", file=sys.stderr)
        return 1
    w = batch.resolve_window(conf["window_start"], conf["window_end"], dt.datetime.now(dt.UTC))
    # Both paths agree only once both processed the window: on a busy machine the running
    # micro-batch can be minutes behind (the batch job takes cores from it), so wait until it has
    # read every record before the window's end, in every partition.
    while True:
        with endpoint.session() as conn:
            left = microbatch.unread_before(s.kafka_bootstrap, microbatch.latest_progress(conn, DEFAULT_NAMESPACE),
                                            w.end_ms)  # fmt: skip
        if left == 0:
            break
        if not still_running():
            return 1
        where = "has stored no micro-batch" if left is None else f"has {left:,} records of the window still to read"
        if time.monotonic() > deadline + args.timeout:
            print(f"[demo] the micro-batch run {where}; see its run in the UI", file=sys.stderr)
            return 1
        print(f"[demo] the micro-batch run {where}: waiting", flush=True)
        time.sleep(10)
    from tormenta import agreement

    with endpoint.session() as conn:  # the batch run's agree task did the same; the demo shows it
        cmp = batch.compare_social(conn, DEFAULT_NAMESPACE, batch.RESULTS_NAMESPACE, w.start_ms, w.end_ms)
        res = agreement.check(conn, DEFAULT_NAMESPACE, batch.RESULTS_NAMESPACE, w.start_ms, w.end_ms, w.label)
    print(f"[demo] the window's aggregates on both paths: {res['compared']} rows compared, {res['same']} the same, "
          f"{res['edge']} off by the window's edges, {res['history']} off by comments stored in an earlier run, "
          f"{res['differ']} different; social comments: micro-batch {cmp['comments']['micro_batch']}, "
          f"batch {cmp['comments']['batch']}; agree: {res['agree']}")  # fmt: skip
    if not still_running():  # the demo leaves the pipeline running: one that died meanwhile is a failure
        return 1
    print(f"[demo] micro-batch run: {s.airflow_url}/dags/{microbatch.DAG_ID}/runs/{run_id}")
    print(f"[demo] batch run:       {s.airflow_url}/dags/{batch.DAG_ID}/runs/{brun}")
    print(f"[demo] stop the pipeline: trigger {microbatch.STOP_DAG_ID} in the UI (or `make down`)")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from tormenta.contracts import check_namespace
    from tormenta.hbase import HBaseEndpoint
    from tormenta.prepare import prepare

    try:
        check_namespace(args.namespace)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    s = load()
    with HBaseEndpoint(args.hbase_host or s.bind_host, args.hbase_port or s.thrift_port).session() as conn:
        done = prepare(args.bootstrap or s.kafka_bootstrap, conn, args.namespace, devices=args.devices)
    print("\n".join(done.lines()))
    return 0


def cmd_stream(args: argparse.Namespace) -> int:
    """spark-submit the streaming job in the foreground (Airflow does this in production)."""
    from tormenta.spark_conf import spark_submit_command
    from tormenta.stack.services import python_env

    s = load()
    job_args = list(args.rest)
    if "--bootstrap" not in job_args:
        job_args += ["--bootstrap", s.kafka_bootstrap]
    if "--checkpoint-root" not in job_args:
        job_args += ["--checkpoint-root", s.checkpoint_root]
    cmd = spark_submit_command("streaming", job_args, master=args.master)
    os.execve(cmd[0], cmd, python_env())
    return 0  # not reached


def cmd_capacity(args: argparse.Namespace) -> int:
    from tormenta import capacity
    from tormenta.intervals import parse_interval

    c = capacity.estimate(args.rate, args.bytes, parse_interval(args.interval), spark_cores=args.spark_cores,
                          ingestors=args.ingestors)  # fmt: skip
    mib = 2**20
    print(f"records per micro-batch   {c.records_per_batch:,}")
    print(f"held per micro-batch      {c.raw_bytes_per_batch / mib:,.1f} MiB raw "
          f"(~{c.working_set_bytes / mib:,.1f} MiB working set)")  # fmt: skip
    print(f"Spark cores needed        {c.cores_needed} (at {c.events_per_core:g} events/s per core, "
          f"{c.batch_fixed_s:g} s fixed per batch)")  # fmt: skip
    print(f"cores / {capacity.SPARK_POOL} slots  {c.cores_available} / {c.spark_slots}")
    for w in c.warnings:
        print(f"WARNING: {w}")
    return 0


def cmd_airflow(args: argparse.Namespace) -> int:
    from tormenta.stack.airflow_setup import airflow_env

    env = airflow_env(load())
    exe = os.path.join(os.path.dirname(sys.executable), "airflow")
    os.execve(exe, [exe, *args.rest], env)
    return 0  # not reached


def cmd_cluster(args: argparse.Namespace) -> int:
    """The platform as a multi-node cluster (docker/): up, down, status, memory."""
    from tormenta.stack import cluster

    if args.action == "up":
        e = cluster.up(build=not args.no_build)
        print(json.dumps(e.__dict__, indent=2))
        return 0
    if args.action == "down":
        cluster.down(remove_data=args.remove_data, engine=args.stop_engine)
        return 0
    if args.action == "memory":
        print(json.dumps(cluster.memory(), indent=2))
        return 0
    return cluster.status()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tormenta", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("stack", help="run the local Kafka / HBase / Airflow stack")
    p.add_argument("action", choices=["up", "down", "status", "logs"])
    p.add_argument("services", nargs="*", default=[], metavar="SERVICE", help=f"for down/logs: some of {', '.join(stack.ALL_PROCESSES)}")
    p.add_argument("-n", "--lines", type=int, default=40, help="logs: lines per service")
    p.add_argument("--timeout", type=float, default=300, help="up: seconds to wait per service")
    p.set_defaults(func=cmd_stack)

    p = sub.add_parser("cluster", help="the platform as a multi-node cluster on this host (docker/)")
    p.add_argument("action", choices=["up", "down", "status", "memory"])
    p.add_argument("--no-build", action="store_true", help="up: reuse the built image")
    p.add_argument("--remove-data", action="store_true", help="down: delete the cluster's data too")
    p.add_argument("--stop-engine", action="store_true", help="down: stop the cluster's dockerd too")
    p.set_defaults(func=cmd_cluster)

    p = sub.add_parser("jars", help="resolve the JVM components from Maven Central")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_jars)

    p = sub.add_parser("smoke", help="trigger the smoke DAG through the REST API and wait")
    p.add_argument("--events", type=int, default=500)
    p.add_argument("--timeout", type=float, default=600)
    p.set_defaults(func=cmd_smoke)

    p = sub.add_parser("demo", help="start the micro-batch DAG and run one batch window over the same events")
    p.add_argument("--timeout", type=float, default=600)
    p.set_defaults(func=cmd_demo)

    from tormenta.contracts import DEFAULT_NAMESPACE
    from tormenta.prepare import DEFAULT_DEVICES

    p = sub.add_parser("prepare", help="Kafka topics, HBase tables and reference data (idempotent)")
    p.add_argument("--namespace", default=DEFAULT_NAMESPACE, help="the namespace's topics and tables (default: tormenta)")
    p.add_argument("--bootstrap", default=None)
    p.add_argument("--devices", type=int, default=DEFAULT_DEVICES)
    p.add_argument("--hbase-host", default=None)
    p.add_argument("--hbase-port", type=int, default=None)
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("stream", help="run the streaming job in the foreground (spark-submit)",
                       description="Extra arguments go to spark_jobs/streaming.py, e.g. --interval '10 seconds'.")
    p.add_argument("--master", default="local[2]")
    p.set_defaults(func=cmd_stream)  # every other argument, in order, goes to the job (see main)

    p = sub.add_parser("capacity", help="memory per micro-batch and cores needed for a rate")
    p.add_argument("--rate", type=float, required=True, help="events per second")
    p.add_argument("--bytes", type=int, default=420, help="bytes per event")
    p.add_argument("--interval", default=DEFAULT_INTERVAL, help="micro-batch interval (PT1S, 10, '1 minute')")
    p.add_argument("--spark-cores", type=int, default=None)
    p.add_argument("--ingestors", type=int, default=0)
    p.set_defaults(func=cmd_capacity)

    p = sub.add_parser("airflow", help="the airflow CLI with the stack's AIRFLOW_HOME",
                       add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_airflow)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # `tormenta stream --interval "1 second"`: options the CLI does not know are the job's. (An
    # argparse.REMAINDER positional does not take arguments that start with '--'.)
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "func", None) is cmd_stream:
        args.rest = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except (jvm.PrerequisiteError, stack.StackError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
