"""B1: ingestor throughput vs Kafka's ProducerPerformance vs a bare confluent-kafka loop.

Same broker, same topic layout (4 partitions), same record size (the mean size of our encoded
events), ``acks=all`` + idempotence + lz4 + the same batching in all three.

* ours: ``PageFeed`` (ten pages) -> ``EventProducer.send`` (envelope, JSON encoding, key) ->
  ``close()`` (every record acknowledged);
* bare: ``confluent_kafka.Producer.produce`` of a ready-made payload of that size;
* tool: ``org.apache.kafka.tools.ProducerPerformance`` from the same Maven-resolved jars.
"""

from __future__ import annotations

import re
import time

from bench.common import Figure, Stopwatch, run_java, settings, tag

PRODUCER_PROPS = {"acks": "all", "enable.idempotence": "true", "compression.type": "lz4", "linger.ms": "10",
                  "batch.size": str(512 * 1024)}  # fmt: skip


def ours(bootstrap: str, topic: str, n: int) -> tuple[float, int]:
    from ingestors.producer import EventProducer
    from kinds.social.contract import KIND as SOCIAL
    from kinds.social.source import PageFeed
    from tormenta.contracts import encode
    from tormenta.reference import POLITICIANS

    feed = PageFeed(sorted(POLITICIANS), name="bench")
    producer = EventProducer(bootstrap, client_id="bench-b1", topics={SOCIAL.name: topic})
    sizes = 0
    with Stopwatch() as sw:
        sent = 0
        while sent < n:
            for event in feed.poll(min(10_000, n - sent)):
                producer.send(SOCIAL, event)
                if sent < 1000:
                    sizes += len(encode(event))
                sent += 1
            producer.poll(0)
        producer.close(timeout=120)
    return n / sw.seconds, sizes // min(n, 1000)


def bare(bootstrap: str, topic: str, n: int, size: int) -> float:
    from confluent_kafka import Producer

    from ingestors.producer import DEFAULT_CONF

    p = Producer({**DEFAULT_CONF, "bootstrap.servers": bootstrap})
    payload = (b'{"schema":"social.comment","v":1,' + b"x" * size)[:size]
    keys = [f"pol-{i:02d}".encode() for i in range(10)]
    with Stopwatch() as sw:
        for i in range(n):
            while True:
                try:
                    p.produce(topic, payload, keys[i % 10])
                    break
                except BufferError:
                    p.poll(0.01)
        left = p.flush(120)
    if left:
        raise RuntimeError(f"{left} records not acknowledged")
    return n / sw.seconds


def tool(bootstrap: str, topic: str, n: int, size: int) -> float:
    props = [f"bootstrap.servers={bootstrap}", *(f"{k}={v}" for k, v in PRODUCER_PROPS.items())]
    out = run_java("org.apache.kafka.tools.ProducerPerformance",
                   ["--topic", topic, "--num-records", str(n), "--record-size", str(size), "--throughput", "-1",
                    "--producer-props", *props], ("kafka",), heap="1g")  # fmt: skip
    m = re.findall(r"(\d+) records sent, ([\d.]+) records/sec", out)
    if not m:
        raise RuntimeError(f"unexpected ProducerPerformance output:\n{out[-1000:]}")
    return float(m[-1][1])


def run(runs: int, n: int) -> list[Figure]:
    from tormenta.kafka import TopicSpec, ensure_topics

    s = settings()
    f_ours = Figure("B1", "ingestor (PageFeed + EventProducer)", "events/s")
    f_bare = Figure("B1", "bare confluent-kafka loop", "events/s")
    f_tool = Figure("B1", "Kafka ProducerPerformance", "events/s")
    f_ratio = Figure("B1", "ingestor / ProducerPerformance", "ratio", target=">= 0.50")
    for i in range(runs):
        t = tag()
        topics = [f"bench.b1.{t}.{x}" for x in ("ours", "bare", "tool")]
        ensure_topics(s.kafka_bootstrap, [TopicSpec(x, 4) for x in topics])
        eps, size = ours(s.kafka_bootstrap, topics[0], n)
        f_ours.values.append(round(eps, 1))
        f_bare.values.append(round(bare(s.kafka_bootstrap, topics[1], n, size), 1))
        f_tool.values.append(round(tool(s.kafka_bootstrap, topics[2], n, size), 1))
        f_ratio.values.append(round(f_ours.values[-1] / f_tool.values[-1], 3))
        f_tool.note = f_ours.note = f_bare.note = f"{n:,} records of {size} bytes, acks=all, idempotent, lz4"
        print(f"  B1 run {i + 1}: ours {eps:,.0f}/s, bare {f_bare.values[-1]:,.0f}/s, tool {f_tool.values[-1]:,.0f}/s",
              flush=True)  # fmt: skip
        time.sleep(1)
    return [f_ours, f_bare, f_tool, f_ratio]
