"""B6: per-event processing vs micro-batch on the same CPU budget (one core each).

* per event: one consumer process handles each event alone: parse + validate, one enrichment
  read (the politician's row), one put — what "a request per event" costs;
* micro-batch: the streaming job (``local[1]``) over the same events (``--until-idle``).

Reported: events/s and CPU-seconds per million events, counting the processing process(es)
and the HBase region server + Thrift server. The streaming job's JVM start-up is measured
separately in the same run (same job over an empty topic) and subtracted.
"""

from __future__ import annotations

import json
import subprocess
import time

import psutil

from bench.common import Figure, settings, tag


def _services_cpu() -> float:
    from tormenta.resources import _cpu
    from tormenta.stack import service_pids

    return sum(_cpu(psutil.Process(pid)) for pid in service_pids().values())


def produce(topic: str, n: int) -> None:
    from ingestors.producer import EventProducer
    from kinds.social.contract import KIND as SOCIAL
    from kinds.social.source import PageFeed
    from tormenta.reference import POLITICIANS

    feed = PageFeed(sorted(POLITICIANS), name="bench-b6")
    p = EventProducer(settings().kafka_bootstrap, "bench-b6", topics={SOCIAL.name: topic})
    sent = 0
    while sent < n:
        for e in feed.poll(min(5000, n - sent)):
            p.send(SOCIAL, e)
            sent += 1
    p.close(120)


def per_event(topic: str, ns: str, n: int) -> tuple[float, float]:
    """Runs in this process (one core): returns (events/s, CPU-seconds incl. HBase side)."""
    from confluent_kafka import Consumer

    from kinds.social.contract import KIND as SOCIAL
    from tormenta.contracts import ContractError, event_row_key, table_name, validate
    from tormenta.hbase import HBaseEndpoint

    s = settings()
    conn = HBaseEndpoint(s.bind_host, s.thrift_port).connect()
    events = conn.table(table_name(SOCIAL.events_table, ns))
    refs = conn.table(table_name("ref_politicians", ns))
    c = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": f"bench-b6-{tag()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    c.subscribe([topic])
    me = psutil.Process()
    cpu0, svc0 = sum(me.cpu_times()[:2]), _services_cpu()
    done = 0
    t0 = None
    while done < n:
        msg = c.poll(1.0)
        if msg is None or msg.error():
            continue
        t0 = t0 or time.perf_counter()
        try:
            doc = validate(msg.value(), SOCIAL, msg.timestamp()[1])
        except ContractError:
            doc = None
        if doc is not None:
            ref = refs.row(doc["page_id"].encode())  # one enrichment read per event
            cells = {b"d:" + k.encode(): str(v).encode() for k, v in doc.items()}
            cells[b"d:politician"] = ref.get(b"d:name", b"")
            cells[b"d:party"] = ref.get(b"d:party", b"")
            events.put(event_row_key(doc["event_id"]), cells, timestamp=int(doc["event_time"]))  # one put
        done += 1
    seconds = time.perf_counter() - t0
    cpu = sum(me.cpu_times()[:2]) - cpu0 + _services_cpu() - svc0
    c.close()
    conn.close()
    return n / seconds, cpu


def micro_batch(topic: str, ns: str) -> tuple[float, float, dict]:
    """The streaming job over ``topic`` until idle: (seconds, CPU-seconds incl. HBase side, last batch)."""
    from tormenta.resources import ResourceMeter
    from tormenta.spark_conf import spark_submit_command
    from tormenta.stack.services import python_env

    s = settings()
    t = tag()
    cmd = spark_submit_command("streaming", [
        "--bootstrap", s.kafka_bootstrap, "--interval", "1 second", "--checkpoint-root",
        str(s.home / "bench-checkpoints" / f"b6-{t}"), "--namespace", ns,
        "--topic-map", f"social.comment={topic},geo.position={topic}.geo", "--until-idle",
        "--hbase-host", s.bind_host, "--hbase-port", str(s.thrift_port), "--max-offsets-per-trigger", "500000",
    ], master="local[1]")  # fmt: skip
    svc0 = _services_cpu()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=python_env(),
                            start_new_session=True)  # fmt: skip
    meter = ResourceMeter("b6", pgid=proc.pid, every=0.5).start()
    out, _ = proc.communicate(timeout=1800)
    seconds = time.perf_counter() - t0
    usage = meter.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"streaming job failed ({proc.returncode})")
    batches = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return seconds, usage.cpu_seconds + _services_cpu() - svc0, {"batches": len(batches),
                                                                  "processing_s": sum(b["seconds"] for b in batches)}


def run(runs: int, n: int) -> list[Figure]:
    from tormenta.hbase import HBaseEndpoint
    from tormenta.kafka import TopicSpec, ensure_topics
    from tormenta.reference import seed
    from tormenta.schema import drop_namespace

    s = settings()
    f_pe_rate = Figure("B6", "per-event consumer (1 core)", "events/s")
    f_mb_rate = Figure("B6", "micro-batch job local[1] (processing time)", "events/s")
    f_pe_cpu = Figure("B6", "per-event: CPU-s per million events", "CPU-s")
    f_mb_cpu = Figure("B6", "micro-batch: CPU-s per million events (start-up subtracted)", "CPU-s")
    ratio = Figure("B6", "micro-batch / per-event, events per CPU-second", "ratio", target=">= 20")
    for i in range(runs):
        t = tag()
        topic, empty = f"bench.b6.{t}", f"bench.b6e.{t}"
        ensure_topics(s.kafka_bootstrap, [TopicSpec(x, 4) for x in (topic, empty, topic + ".geo", empty + ".geo")])
        conn = HBaseEndpoint(s.bind_host, s.thrift_port).connect()
        for ns in (f"b6p{t}", f"b6m{t}", f"b6e{t}"):
            seed(conn, device_count=10, namespace=ns)
        conn.close()
        produce(topic, n)
        pe_rate, pe_cpu = per_event(topic, f"b6p{t}", n)
        idle_s, idle_cpu, _ = micro_batch(empty, f"b6e{t}")
        mb_s, mb_cpu, info = micro_batch(topic, f"b6m{t}")
        mb_rate = n / info["processing_s"] if info["processing_s"] else None
        mb_cpu_net = max(mb_cpu - idle_cpu, 0.01)
        f_pe_rate.values.append(round(pe_rate, 1))
        f_mb_rate.values.append(round(mb_rate, 1))
        f_pe_cpu.values.append(round(pe_cpu / n * 1e6, 1))
        f_mb_cpu.values.append(round(mb_cpu_net / n * 1e6, 1))
        ratio.values.append(round((n / mb_cpu_net) / (n / pe_cpu), 2))
        conn = HBaseEndpoint(s.bind_host, s.thrift_port).connect()
        for ns in (f"b6p{t}", f"b6m{t}", f"b6e{t}"):
            drop_namespace(conn, ns)
        conn.close()
        print(f"  B6 run {i + 1}: per-event {pe_rate:,.0f}/s {pe_cpu:.1f} CPU-s; micro-batch {mb_rate:,.0f}/s "
              f"{mb_cpu:.1f} CPU-s (start-up {idle_cpu:.1f}, {info['batches']} batches)", flush=True)  # fmt: skip
    for f in (f_pe_rate, f_mb_rate, f_pe_cpu, f_mb_cpu):
        f.note = f"{n:,} social comments"
    return [f_pe_rate, f_mb_rate, f_pe_cpu, f_mb_cpu, ratio]
