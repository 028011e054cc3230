"""The Spark jobs' command lines, one dataclass per job: the DAGs and the CLI build a job's
arguments with ``to_argv``, and the job parses them with the parser made from the same fields
(``parser``, ``batch_parser``). A field is an option ``--field-name``; a ``bool`` field is a switch.

In a DAG, any field may hold a Jinja template (``"{{ params.interval }}"``): Airflow renders it
before ``spark-submit`` runs, and the job's parser checks the rendered value. The jobs' own checks
(an interval Spark accepts, the namespace rule, ...) stay in the jobs.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

from tormenta import smoke
from tormenta.contracts import DEFAULT_NAMESPACE
from tormenta.intervals import DEFAULT_INTERVAL

TYPES = {"str": str, "int": int, "float": float}
# The DAGs' templates for the HBase endpoint of a job: macros of tormenta.providers.dags, which
# read the hbase_default connection through HBaseHook (one reading of its extras and defaults).
HBASE_FROM_CONNECTION = {"hbase_host": "{{ hbase_host() }}", "hbase_port": "{{ hbase_port() }}",
                         "hbase_zookeeper": "{{ hbase_zookeeper() }}"}  # fmt: skip


# Spark's real-time mode: the duration of one long-running batch, i.e. how often it checkpoints.
REALTIME_CHECKPOINT = "30 seconds"
# How the streaming job runs its query: the micro-batch DAG's ``mode`` Param and ``--mode``.
STREAM_MODES = {
    "always-on": "a micro-batch every interval until the run is stopped (Spark's processingTime trigger)",
    "triggered": "every record already in Kafka when the query starts, in micro-batches of at most max "
                 "records, then the query ends (Spark's availableNow trigger)",
    "real-time": "each record as it arrives, through the kinds' stateless rules only (Spark's real-time "
                 f"mode: a JVM foreach sink, update output mode), checkpointed every {REALTIME_CHECKPOINT} "
                 "until the run is stopped",
}


def opt(default: Any = MISSING, help: str | None = None, choices: tuple[str, ...] | None = None) -> Any:  # noqa: A002
    return field(default=default, metadata={"help": help, "choices": choices})


class JobArgs:
    """Fields -> options. ``step``: the job's sub-command this dataclass is (the batch job's two)."""

    step: ClassVar[str | None] = None

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        for f in fields(cls):  # type: ignore[arg-type]
            flag = "--" + f.name.replace("_", "-")
            kw: dict[str, Any] = {"dest": f.name, "help": f.metadata.get("help")}
            if f.type == "bool":
                p.add_argument(flag, action="store_true", **kw)
                continue
            kw["type"] = TYPES[f.type.split(" | ")[0]]
            if f.metadata.get("choices"):
                kw["choices"] = f.metadata["choices"]
            if f.default is MISSING:
                kw["required"] = True
            else:
                kw["default"] = f.default
            p.add_argument(flag, **kw)
        return p

    @classmethod
    def parser(cls, description: str) -> argparse.ArgumentParser:
        return cls.add_arguments(argparse.ArgumentParser(description=description))

    def to_argv(self) -> list[str]:
        """The command line: the step's name, then every option that is set and not its default."""
        out = [self.step] if self.step else []
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None or (f.default is not MISSING and value == f.default):
                continue
            flag = "--" + f.name.replace("_", "-")
            out += [flag] if f.type == "bool" else [flag, str(value)]
        return out


@dataclass(kw_only=True)
class HBaseArgs(JobArgs):
    hbase_host: str = opt("127.0.0.1", "Thrift gateway (control plane, metrics)")
    hbase_port: int = opt(9090)
    hbase_zookeeper: str = opt("127.0.0.1:2181", "ZooKeeper quorum host:port[,host:port] of the native writer "
                                                 "(the data path)")  # fmt: skip


@dataclass(kw_only=True)
class StreamArgs(HBaseArgs):
    """spark_jobs/streaming.py: the micro-batch query."""

    bootstrap: str = opt(help="Kafka bootstrap servers")
    interval: str = opt(DEFAULT_INTERVAL, "micro-batch trigger interval (PT1S, 10, '1 second', '500 ms')")
    max_offsets_per_trigger: int = opt(200_000)
    checkpoint_root: str | None = opt(None, "where the query's checkpoints go (required; the operator adds it)")
    query_name: str | None = opt(None, "default: the namespace's query (tormenta.contracts.query_name), the one "
                                       "the micro-batch DAG runs, so a restart by hand resumes its checkpoint")
    query_version: int = opt(1)
    starting_offsets: str = opt("earliest", "only used when the checkpoint is new", ("earliest", "latest"))
    namespace: str = opt(DEFAULT_NAMESPACE, "the namespace whose topics are read and whose tables are written")
    topic_map: str = opt("", "override topics (default: the namespace's): social.comment=<topic>,geo.position=<topic>")
    run_seconds: float = opt(0.0, "stop after this long (0: run until stopped)")
    control_run: str | None = opt(None, "supervised by Airflow: watch <namespace>_control for this run's stop "
                                         "request, then drain what is in Kafka and stop")  # fmt: skip
    until_idle: bool = opt(False, "stop once every available record is processed (tests, backfills)")
    mode: str = opt("always-on", "; ".join(f"{k}: {v}" for k, v in STREAM_MODES.items()), tuple(STREAM_MODES))


@dataclass(kw_only=True)
class LandArgs(JobArgs):
    """spark_jobs/batch.py land: a window's records to raw JSON lines and Parquet parts."""

    step: ClassVar[str] = "land"
    source: str = opt(help="where the window's records come from", choices=("kafka", "file"))
    start_ms: int = opt()
    end_ms: int = opt()
    raw_dir: str = opt()
    parquet_dir: str = opt()
    bootstrap: str = opt("127.0.0.1:9092")
    topics: str = opt("", "comma-separated (kafka source)")
    file: str | None = opt(None, "JSON lines of Kafka-shaped records (file source)")
    parts: int = opt(4)
    report: str | None = opt(None, "also write the JSON summary to this file")


@dataclass(kw_only=True)
class ProcessArgs(HBaseArgs):
    """spark_jobs/batch.py process: the business rules over a window's Parquet parts, to HBase."""

    step: ClassVar[str] = "process"
    parquet_dir: str = opt()
    namespace: str = opt(help="HBase namespace the results go to")
    label: str = opt()
    seq: int = opt()
    source_namespace: str = opt(DEFAULT_NAMESPACE, "namespace of the topics read")
    parts: int = opt(4)
    write: str = opt("bulk", "bulk: HFiles + bulk load (default); put: BufferedMutator puts, as the micro-batches",
                     ("bulk", "put"))  # fmt: skip
    staging_dir: str | None = opt(None, "HFile staging folder, a Hadoop path the region servers can read "
                                        "(default: hfiles/ beside --parquet-dir)")  # fmt: skip
    report: str | None = opt(None, "also write the JSON summary to this file")


@dataclass(kw_only=True)
class SmokeArgs(JobArgs):
    """spark_jobs/smoke.py: the smoke topic's events of one tag to HBase rows."""

    bootstrap: str = opt()
    topic: str = opt()
    tag: str = opt(help="only events whose id starts with '<tag>-'")
    hbase_host: str = opt("127.0.0.1")
    hbase_port: int = opt(9090)
    table: str = opt(smoke.TABLE)


def batch_parser(description: str) -> argparse.ArgumentParser:
    """The batch job's two steps as sub-commands."""
    p = argparse.ArgumentParser(description=description)
    sub = p.add_subparsers(dest="step", required=True)
    for args in (LandArgs, ProcessArgs):
        args.add_arguments(sub.add_parser(args.step))
    return p
