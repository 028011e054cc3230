"""B9: the same geo position, always-on vs real-time: the time from sending it to Kafka to reading
it back from HBase (its device's latest row, through Thrift), one position at a time.

Each run starts the streaming job twice on fresh topics and tables, with the cores the micro-batch
DAG gives it: always-on at 1 s on ``local[<stream cores>]``, then real-time mode on one task slot
per geo partition (``realtime_task_slots``). Once a first position is readable (the query is up),
``--b9-probes`` positions are sent 200 ms apart, each timed until its row shows it. The triggered
lane has no per-event latency: a record waits for the next scheduled run (up to 5 minutes) plus
that run's start-up.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
import uuid

from bench.common import Figure, settings, stop_group


def one_lane(s, mode: str, probes: int) -> list[float]:
    from confluent_kafka import Producer

    from tormenta import capacity
    from tormenta.contracts import table_name
    from tormenta.hbase import HBaseEndpoint
    from tormenta.kafka import TopicSpec, ensure_topics
    from tormenta.providers.dags import realtime_task_slots
    from tormenta.reference import seed
    from tormenta.schema import drop_namespace
    from tormenta.spark_conf import spark_submit_command
    from tormenta.stack.services import python_env

    tag = uuid.uuid4().hex[:8]
    ns, geo, social = f"b{tag}", f"bench.geo.{tag}", f"bench.social.{tag}"
    ensure_topics(s.kafka_bootstrap, [TopicSpec(geo, 4), TopicSpec(social, 4)])
    endpoint = HBaseEndpoint(s.bind_host, s.thrift_port)
    with endpoint.session() as conn:
        seed(conn, device_count=10, namespace=ns)
    slots = realtime_task_slots() if mode == "real-time" else capacity.stream_cores()
    job = spark_submit_command("streaming", [
        "--bootstrap", s.kafka_bootstrap, "--interval", "1 second", "--checkpoint-root",
        str(s.home / "bench-checkpoints" / tag), "--namespace", ns, "--mode", mode,
        "--topic-map", f"social.comment={social},geo.position={geo}", "--starting-offsets", "earliest",
        "--hbase-host", s.bind_host, "--hbase-port", str(s.thrift_port),
    ], master=f"local[{slots}]")  # fmt: skip
    spark = subprocess.Popen(job, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=python_env(),
                             start_new_session=True)  # fmt: skip
    producer = Producer({"bootstrap.servers": s.kafka_bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 0})  # fmt: skip
    waits: list[float] = []
    try:
        with endpoint.session() as conn:
            latest = conn.table(table_name("geo_latest", ns))

            def send_and_wait(i: int, limit_s: float) -> float:
                now = int(time.time() * 1000)
                e = {"schema": "geo.position", "v": 1, "event_id": f"p{i}", "event_time": now, "source": "b9",
                     "sent_at": now, "device_id": "dev-00000", "trip_id": "t1", "lat": 40.4, "lon": -3.7,
                     "speed_kmh": 30.0}  # fmt: skip
                sent = time.monotonic()
                producer.produce(geo, key=b"dev-00000", value=json.dumps(e).encode())
                producer.flush(10)
                while latest.row(b"dev-00000", columns=[b"d:event_id"]).get(b"d:event_id") != f"p{i}".encode():
                    if spark.poll() is not None or time.monotonic() - sent > limit_s:
                        raise RuntimeError(f"B9 {mode}: position p{i} not readable after {limit_s:.0f} s "
                                           f"(job exit {spark.poll()})")  # fmt: skip
                    time.sleep(0.005)
                return (time.monotonic() - sent) * 1000

            send_and_wait(0, 300)  # the query is up
            for i in range(1, probes + 1):
                waits.append(send_and_wait(i, 60))
                time.sleep(0.2)
    finally:
        stop_group(spark, 120)
        with endpoint.session() as conn:
            drop_namespace(conn, ns)
    return waits


def run(runs: int, probes: int) -> list[Figure]:
    s = settings()
    figures = []
    for mode, what in (("always-on", "always-on at 1 s"), ("real-time", "real-time mode")):
        p50 = Figure("B9", f"geo position send -> readable in HBase, p50, {what}", "ms")
        p95 = Figure("B9", f"geo position send -> readable in HBase, p95, {what}", "ms")
        for i in range(runs):
            waits = sorted(one_lane(s, mode, probes))
            p50.values.append(round(statistics.median(waits)))
            p95.values.append(round(waits[min(len(waits) - 1, int(0.95 * len(waits)))]))
            print(f"  B9 {mode} run {i + 1}: p50 {p50.values[-1]} ms, p95 {p95.values[-1]} ms over {len(waits)} "
                  "positions", flush=True)  # fmt: skip
        figures += [p50, p95]
    return figures
