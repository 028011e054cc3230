"""
### Tormenta micro-batch pipeline (always on)

`ingestors → Kafka → Spark micro-batches every *interval* → business rules + HBase enrichment → HBase`

**Start**: trigger with the Params below (the interval above all). One run at a time.
**Change the interval**: trigger again with the new value; the running run hands over (ingestors
stop, the stream drains) and the new run restarts the query **on the same checkpoint**.
**Stop**: trigger `tormenta_microbatch_stop` — ingestors stop first, the last micro-batch
finishes, then the query stops; nothing is left running. Marking this run (or its `stream`
task) *failed* stops every process at once, without the drain: the query stops where it is, and
the next run resumes it from its checkpoint.

Tasks: `plan` (ingestors to run, capacity check, warnings) → `prepare` (topics, HBase tables,
reference data; idempotent) → `ingest` (one mapped task per ingestor) + `stream` (spark-submit,
holds its cores in the `tormenta_spark` pool) + `supervise` (freshness and lag in its log,
ordered stop). A crashed ingestor or streaming job is restarted by Airflow's retries with
exponential backoff; pulling ingestors resume from their saved position and the streaming job
from its checkpoint, and HBase stores every event once.

#### Capacity (memory held per micro-batch = events/s × bytes/event × interval)
{capacity_table}

Cores needed assume {per_core} events/s per Spark core (measured, `bench/stream_latency.py`).
`tormenta capacity --rate R --bytes B --interval PT1S` computes it for your numbers; the `plan`
task logs it for the run's Params and warns when parallelism exceeds the cores.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task

from tormenta import capacity, microbatch
from tormenta.jobs import HBASE_FROM_CONNECTION, StreamArgs
from tormenta.providers.dags import dag_args
from tormenta.providers.ingestor import IngestorOperator
from tormenta.providers.spark import SparkJobOperator

RESTART = {
    "retries": 50,
    "retry_delay": timedelta(seconds=5),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=2),
}

__doc__ = __doc__.format(
    capacity_table=capacity.table_markdown([(200, 420, 1), (5_000, 420, 1), (5_000, 420, 10), (50_000, 420, 60)]),
    per_core=capacity.EVENTS_PER_CORE,
)


@dag(**dag_args(microbatch.DAG_ID, __doc__, "micro-batch", params=microbatch.params()))
def tormenta_microbatch():
    @task
    def plan(params=None, dag_run=None, dag=None) -> list[dict]:
        """The ingestors to run (one mapped ``ingest`` task each); logs capacity and warnings.

        A trigger with unknown conf keys, or Params the plan refuses, fails here at once (no retry).
        """
        import logging

        from airflow.sdk.exceptions import AirflowFailException

        from tormenta.triggers import fail_on_bad_trigger

        fail_on_bad_trigger(dag_run.conf, dag.params)  # params holds the conf's keys too
        try:
            p = microbatch.plan(params)
        except ValueError as exc:
            raise AirflowFailException(f"the run's Params cannot be planned: {exc}") from None
        log = logging.getLogger("airflow.task")
        log.info("micro-batch every %.3fs; %d ingestor(s): %s", p.interval_s, len(p.ingestors), p.names)
        log.info("capacity: %s", p.capacity)
        for w in p.warnings:
            log.warning("CAPACITY WARNING: %s", w)
        return p.ingestors

    @task
    def prepare(params=None, run_id=None) -> dict:
        from tormenta.control import ControlPlane
        from tormenta.prepare import DEFAULT_DEVICES, prepare
        from tormenta.providers.hbase import HBaseHook
        from tormenta.providers.kafka import KafkaHook

        ns = params["namespace"]
        hook = HBaseHook()
        with hook.session() as conn:
            done = prepare(KafkaHook().get_conn, conn, ns, devices=max(DEFAULT_DEVICES, int(params["geo_devices"])))
        print("\n".join(done.lines()))
        ControlPlane(hook.endpoint(), ns).begin(run_id)
        return {"topics_created": [t for t, new in done.topics.items() if new], "reference_rows": done.reference_rows}

    planned = plan()
    prepared = prepare()
    planned >> prepared

    ingest = IngestorOperator.partial(
        task_id="ingest",
        namespace="{{ params.namespace }}",
        map_index_template="{{ task.spec.name }}",  # rendered before the task runs: the name while it runs
        **RESTART,
    ).expand(spec=planned)

    stream = SparkJobOperator(
        task_id="stream",
        job="streaming",
        pool=capacity.SPARK_POOL,
        pool_slots=capacity.stream_cores(),
        checkpoint_root=True,
        meter_namespace="{{ params.namespace }}",
        meter_services=True,
        graceful_kill=True,  # marked failed: the driver stops its query, the next run resumes it
        task_slots="{{ realtime_task_slots() if params.mode == 'real-time' else '' }}",
        application_args=StreamArgs(
            bootstrap="{{ kafka_bootstrap() }}", interval="{{ params.interval }}",
            max_offsets_per_trigger="{{ params.max_records_per_batch }}",
            query_name="{{ query_name(params.namespace, params.mode) }}", query_version="{{ params.query_version }}",
            namespace="{{ params.namespace }}", control_run="{{ run_id }}", mode="{{ params.mode }}",
            **HBASE_FROM_CONNECTION,
        ).to_argv(),
        **RESTART,
    )  # fmt: skip

    @task(retries=3, retry_delay=timedelta(seconds=10))
    def supervise(specs: list[dict], params=None, run_id=None, ti=None, dag_run=None) -> dict:
        import logging
        import time

        from airflow.sdk import BaseHook

        from tormenta.control import ControlPlane
        from tormenta.providers.hbase import HBaseHook
        from tormenta.providers.kafka import bootstrap_servers

        ns = params["namespace"]
        hook = HBaseHook()
        bootstrap = bootstrap_servers()

        def watch() -> dict:
            with hook.session() as conn:
                progress = microbatch.latest_progress(conn, ns, params["mode"])
            ends = (progress or {}).get("progress", {}).get("endOffsets") or []
            return microbatch.describe(progress, microbatch.consumer_lag(bootstrap, ends))

        def failed_tasks() -> list[str]:
            states = ti.get_task_states(dag_id=microbatch.DAG_ID, run_ids=[run_id]).get(run_id, {})
            return sorted({t.split("_", 1)[0] if t.startswith("ingest_") else t
                           for t, st in states.items() if st in ("failed", "upstream_failed")})  # fmt: skip

        warned: set[str] = set()

        def handover() -> bool:
            """A newer run is queued and its Params can run (read through the REST API as viewer)."""
            if ti.get_dr_count(dag_id=microbatch.DAG_ID, states=["queued"]) == 0:
                return False
            try:
                api = BaseHook.get_connection("airflow_api")
            except Exception:  # noqa: BLE001 - no API connection: hand over unchecked, as before
                logging.getLogger("airflow.task").warning("no airflow_api connection: handing over unchecked")
                return True
            from tormenta.airflow_api import AirflowClient

            client = AirflowClient(api.host, api.login, api.password)
            return microbatch.handover_target(client.dag_runs(microbatch.DAG_ID, ["queued"]), warned) is not None

        started = dag_run.start_date.timestamp() if dag_run and dag_run.start_date else time.time()
        minutes = int(params["run_minutes"])
        deadline = time.monotonic() + max(0.0, started + minutes * 60 - time.time()) if minutes else None
        from airflow.sdk.exceptions import AirflowFailException

        try:
            return microbatch.supervise(microbatch.Supervision(
                control=ControlPlane(hook.endpoint(), ns),
                run_id=run_id,
                ingestors=[spec["name"] for spec in specs],
                handover=handover,
                failed_tasks=failed_tasks,
                watch=watch,
                deadline=deadline,
                log=logging.getLogger("airflow.task"),
            ))  # fmt: skip
        except microbatch.RunFailed as exc:  # stopped in order after a failure: retrying cannot help
            raise AirflowFailException(str(exc)) from None

    prepared >> [ingest, stream]
    prepared >> supervise(planned)


tormenta_microbatch()
