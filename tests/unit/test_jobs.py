"""One dataclass per Spark job: what the DAG builds (to_argv) is what the job parses."""

from __future__ import annotations

import dataclasses

import pytest

from tormenta.contracts import query_name
from tormenta.jobs import LandArgs, ProcessArgs, SmokeArgs, StreamArgs

pytestmark = pytest.mark.unit


def test_the_streaming_job_reads_back_every_field_the_dag_sets():
    from spark_jobs import streaming

    args = StreamArgs(bootstrap="k1:9092,k2:9092", interval="10 seconds", max_offsets_per_trigger=500,
                      checkpoint_root="hdfs://nn:8020/ck", query_name="ns_microbatch", query_version=3,
                      namespace="ns", hbase_host="h", hbase_port=9095, hbase_zookeeper="z1:2181,z2:2181",
                      run_seconds=1.5, control_run="manual__2026-11-27T10:00:00+00:00", until_idle=True)  # fmt: skip
    parsed = vars(streaming.parse_args(args.to_argv()))
    assert {f.name: parsed[f.name] for f in dataclasses.fields(args)} == dataclasses.asdict(args)
    assert parsed["interval_seconds"] == 10.0 and set(parsed["topics"]) == {"ns.social.comments", "ns.geo.positions"}


def test_defaults_are_left_out_of_the_command_and_the_job_has_the_same_ones():
    from spark_jobs import streaming

    args = StreamArgs(bootstrap="b:9092", checkpoint_root="/ck")
    assert args.to_argv() == ["--bootstrap", "b:9092", "--checkpoint-root", "/ck"]
    parsed = vars(streaming.parse_args(args.to_argv()))
    # the one default the job resolves: the namespace's query, the one the micro-batch DAG runs
    assert parsed.pop("query_name") == query_name(args.namespace) == "tormenta_microbatch"
    assert {f.name: parsed[f.name] for f in dataclasses.fields(args) if f.name != "query_name"} == {
        k: v for k, v in dataclasses.asdict(args).items() if k != "query_name"}
    other = vars(streaming.parse_args(StreamArgs(bootstrap="b", checkpoint_root="/ck", namespace="ns2").to_argv()))
    assert other["query_name"] == "ns2_microbatch"


def test_both_batch_steps_and_the_smoke_job_read_back_what_the_dags_set():
    from spark_jobs import batch, smoke

    land = LandArgs(source="file", start_ms=1, end_ms=2, raw_dir="/r", parquet_dir="/p", file="/f.jsonl", parts=8,
                    report="/land.json")  # fmt: skip
    proc = ProcessArgs(parquet_dir="/p", namespace="tormenta_batch", label="w202611270000-202611270100", seq=5,
                       parts=8, write="put", hbase_zookeeper="z:2181", report="/process.json")  # fmt: skip
    for args in (land, proc):
        parsed = vars(batch.parse_args(args.to_argv()))
        assert parsed.pop("step") == args.step
        assert parsed == dataclasses.asdict(args)
    sm = SmokeArgs(bootstrap="b:9092", topic="tormenta.smoke", tag="run_1", hbase_port=9091)
    assert vars(smoke.parse_args(sm.to_argv())) == dataclasses.asdict(sm)


def test_a_template_stays_a_template_until_airflow_renders_it_and_the_job_checks_the_result():
    from spark_jobs import streaming

    argv = StreamArgs(bootstrap="{{ kafka_bootstrap() }}", interval="{{ params.interval }}",
                      checkpoint_root="/ck").to_argv()  # fmt: skip
    assert argv[:4] == ["--bootstrap", "{{ kafka_bootstrap() }}", "--interval", "{{ params.interval }}"]
    with pytest.raises(SystemExit):  # unrendered, it is not an interval
        streaming.parse_args(argv)
