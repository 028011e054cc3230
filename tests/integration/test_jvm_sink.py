"""The JVM sink (jvm/sink) against the real HBase, inside Spark 4.2's own JVM.

First of all: HBase's 2.6.1-hadoop3 client runs on the classpath Spark 4.2 ships (hadoop-client-api
and -runtime 3.5, ZooKeeper 3.9), with nothing of Hadoop's own copied next to it.
"""

from __future__ import annotations

import pytest

from spark_jobs import jvm_sink
from tormenta.hbase import HBaseEndpoint, ensure_table

pytestmark = pytest.mark.integration

MUTATIONS = "table string, row string, ts bigint, cells map<string, binary>, metric string, event_time bigint"


@pytest.fixture
def table(hbase, unique):
    name = f"sink_{unique}"
    ensure_table(hbase, name, {"d": {"max_versions": 3}})
    yield name
    hbase.delete_table(name, disable=True)


@pytest.fixture
def settings(stack):
    return HBaseEndpoint(stack.bind_host, stack.thrift_port,
                         zookeeper_quorum=f"{stack.bind_host}:{stack.zookeeper_port}").native_settings()  # fmt: skip


def test_hbase_client_coexists_with_sparks_hadoop(spark):
    jvm = spark.sparkContext._jvm
    assert jvm.org.apache.hadoop.util.VersionInfo.getVersion().startswith("3.5")  # Spark's hadoop-client
    assert jvm.org.apache.hadoop.hbase.util.VersionInfo.getVersion() == "2.6.1-hadoop3"
    # the client's config and the Hadoop Configuration class Spark ships work together
    conf = jvm.io.tormenta.spark.HBaseSettings.configuration("hbase.zookeeper.quorum=127.0.0.1:2181")
    assert conf.get("hbase.zookeeper.quorum") == "127.0.0.1:2181"
    assert conf.getClass().getProtectionDomain().getCodeSource().getLocation().getPath().endswith(
        "hadoop-client-api-3.5.0.jar")


def test_writes_with_explicit_timestamps_and_counts_what_it_flushed(spark, hbase, table, settings):
    rows = [(table, f"r{i}", 100 + i, {"d:a": f"v{i}".encode(), "d:b": None}, "m1" if i % 2 else "m2", 1000 * i)
            for i in range(2000)]  # fmt: skip
    rows.append(("", "ignored", 0, {}, "read", None))  # count-only
    df = spark.createDataFrame(rows, MUTATIONS)
    written = jvm_sink.write(df, settings, latency_edges=(1000,))
    assert written[(table, "m1")].rows == written[(table, "m2")].rows == 1000
    assert written[(table, "m1")].cells == 1000  # the null cell is not written
    assert written[("", "read")].rows == 1
    assert written[(table, "m2")].min_event_time == 0 and written[(table, "m1")].max_event_time == 1999 * 1000
    assert sum(written[(table, "m1")].histogram) == 1000  # every row's latency in one bucket or another
    stored = dict(hbase.table(table).scan(include_timestamp=True))
    assert len(stored) == 2000
    assert stored[b"r7"] == {b"d:a": (b"v7", 107)}
    # a second write of the same mutations changes nothing: no new versions, no new rows
    jvm_sink.write(df, settings)
    assert dict(hbase.table(table).scan(include_timestamp=True)) == stored
    assert hbase.table(table).cells(b"r7", b"d:a", versions=3) == [b"v7"]


def test_a_refused_write_fails_the_job(spark, settings, unique):
    df = spark.createDataFrame([(f"no_such_table_{unique}", "r", 1, {"d:a": b"x"}, None, None)], MUTATIONS)
    with pytest.raises(Exception, match=f"no_such_table_{unique}"):
        jvm_sink.write(df, settings)


def test_lookup_reads_batched_and_as_of_a_timestamp(spark, hbase, table, settings):
    tbl = hbase.table(table)
    tbl.put(b"k1", {b"d:a": b"old"}, timestamp=10)
    tbl.put(b"k1", {b"d:a": b"new"}, timestamp=20)
    tbl.put(b"k2", {b"d:a": b"two"}, timestamp=10)
    keys = spark.createDataFrame([(table, k) for k in ["k1", "k2", "k3", None]], "t string, k string")
    now = {r["k"]: r["a"] for r in jvm_sink.lookup(keys, "t", "k", {"a": "d:a"}, settings).collect()}
    assert now == {"k1": "new", "k2": "two", "k3": None, None: None}
    before = {r["k"]: r["a"] for r in jvm_sink.lookup(keys, "t", "k", {"a": "d:a"}, settings, before_ts=20).collect()}
    assert before["k1"] == "old"  # what a replay of the batch at timestamp 20 read the first time


def test_bulk_load_writes_hfiles_that_equal_the_puts(spark, hbase, table, settings, tmp_path, unique):
    """The batch window's path: HFiles sorted by row, bulk loaded; the same cells as puts, and a
    second load of the same mutations leaves the table as it was."""
    twin = f"{table}_put"
    ensure_table(hbase, twin, {"d": {"max_versions": 3}})
    try:
        rows = [(table, f"r{i:05d}", 7, {"d:b": f"v{i}".encode(), "d:a": b"x"}, "m", 1_000 + i) for i in range(3000)]
        rows += [(table, "r00001", 7, {"d:c": b"merged"}, "m", 1_000)]  # a second mutation of one row
        df = spark.createDataFrame(rows + [("", "", 0, {}, "read", None)], MUTATIONS)
        report = jvm_sink.bulk_load(df, settings, (tmp_path / "hfiles").as_uri(), 3, latency_edges=(1000,))
        assert report[(table, "m")].rows == 3001 and report[("", "read")].rows == 1
        assert report[(table, "m")].min_event_time == 1_000
        loaded = dict(hbase.table(table).scan(include_timestamp=True))
        assert len(loaded) == 3000
        assert loaded[b"r00001"] == {b"d:a": (b"x", 7), b"d:b": (b"v1", 7), b"d:c": (b"merged", 7)}
        jvm_sink.write(spark.createDataFrame([(twin, *r[1:]) for r in rows], MUTATIONS), settings)
        assert dict(hbase.table(twin).scan(include_timestamp=True)) == loaded
        jvm_sink.bulk_load(df, settings, (tmp_path / "hfiles").as_uri(), 2)
        assert dict(hbase.table(table).scan(include_timestamp=True)) == loaded
        assert hbase.table(table).cells(b"r00002", b"d:b", versions=3) == [b"v2"]
    finally:
        hbase.delete_table(twin, disable=True)
