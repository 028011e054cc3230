package io.tormenta.spark;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.apache.hadoop.hbase.TableName;
import org.apache.hadoop.hbase.client.BufferedMutator;
import org.apache.hadoop.hbase.client.BufferedMutatorParams;
import org.apache.hadoop.hbase.client.Connection;
import org.apache.hadoop.hbase.client.Put;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * Writes a DataFrame of mutations to HBase from the executors, through the native client's
 * {@link BufferedMutator}: straight to the region servers, no Thrift gateway, rows never cross
 * Python.
 *
 * <p>The mutations have the columns {@code table} (string), {@code row} (string or binary),
 * {@code ts} (long, the explicit timestamp of every cell of the row) and {@code cells}
 * (map of {@code "family:qualifier"} to string or binary; null values are skipped). Rows of many
 * tables may share one DataFrame: each task keeps one mutator per table. Two optional columns
 * make the write also the batch's bookkeeping, so a micro-batch needs no second Spark job:
 * {@code metric} (string: rows are counted per table and metric) and {@code event_time} (long,
 * epoch ms: the latency of a row is the time its task's flush returned minus its event time).
 * A row whose table is the empty string is only counted, never written: the caller's independent
 * count of what it meant to write.
 *
 * <p>Retry: idempotent. Every cell carries its explicit timestamp, so writing the same mutations
 * again overwrites the same cells (no new versions, no new rows); a failed task or batch can be
 * re-run. A mutation the cluster refuses fails the task (the mutator's default listener throws on
 * flush) instead of being dropped.
 */
public final class HBaseWriter {
  /** What one task reports per table and metric (see {@link #write}). */
  public static final StructType COUNTS = new StructType()
      .add("table", DataTypes.StringType, false)
      .add("metric", DataTypes.StringType, false)
      .add("rows", DataTypes.LongType, false)
      .add("cells", DataTypes.LongType, false)
      .add("min_event_time", DataTypes.LongType, true)
      .add("max_event_time", DataTypes.LongType, true)
      .add("max_latency", DataTypes.LongType, true)
      .add("histogram", DataTypes.StringType, false)
      .add("fine", DataTypes.StringType, false);

  /** Fine latency buckets grow by 1 %: percentiles from them are within 1 % of the exact value. */
  static final double FINE_GROWTH = Math.log(1.01);

  private HBaseWriter() {}

  /**
   * Writes every mutation (one Spark job) and returns one tab-separated line per table and
   * metric: table, metric, rows, cells, min and max event time, max latency (ms; empty without
   * {@code event_time}), the latency histogram over {@code edges} (comma-separated counts,
   * {@code edges.length + 1} of them: bucket i holds latencies {@code <= edges[i]} and above the
   * previous edge), and a fine histogram ({@code bucket:count,...}, bucket
   * {@code floor(ln(1 + latency) / ln 1.01)}).
   */
  public static String write(Dataset<Row> mutations, String settings, long writeBufferBytes, long[] edges) {
    StructType schema = mutations.schema();
    int[] idx = {schema.fieldIndex("table"), schema.fieldIndex("row"), schema.fieldIndex("ts"),
        schema.fieldIndex("cells"), optionalIndex(schema, "metric"), optionalIndex(schema, "event_time")};
    MapPartitionsFunction<Row, Row> task = rows -> writePartition(rows, settings, writeBufferBytes, idx, edges);
    List<Row> parts = mutations.mapPartitions(task, Encoders.row(COUNTS)).collectAsList();
    Map<String, Tally> total = new TreeMap<>();
    for (Row r : parts) {
      total.computeIfAbsent(r.getString(0) + "\t" + r.getString(1), k -> new Tally(edges.length)).merge(r);
    }
    StringBuilder out = new StringBuilder();
    total.forEach((k, t) -> out.append(k).append('\t').append(t.line()).append('\n'));
    return out.toString();
  }

  private static int optionalIndex(StructType schema, String name) {
    return java.util.Arrays.asList(schema.fieldNames()).contains(name) ? schema.fieldIndex(name) : -1;
  }

  static byte[] bytes(Object value) {
    if (value instanceof byte[] b) {
      return b;
    }
    return value.toString().getBytes(StandardCharsets.UTF_8);
  }

  /** Counts and latencies of one table and metric (in a task, then merged on the driver). */
  static final class Tally {
    long rows;
    long cells;
    long minTime = Long.MAX_VALUE;
    long maxTime = Long.MIN_VALUE;
    long maxLatency = Long.MIN_VALUE;
    final long[] hist;
    final Map<Integer, Long> fine = new TreeMap<>();
    long[] times = new long[16];
    int nTimes;
    /** Event times per second (epoch s -> rows), for reports settled later on the driver. */
    final Map<Long, Long> seconds = new TreeMap<>();

    Tally(int edges) {
      hist = new long[edges + 1];
    }

    void time(long t) {
      if (nTimes == times.length) {
        times = java.util.Arrays.copyOf(times, times.length * 2);
      }
      times[nTimes++] = t;
    }

    /** An event time kept per second only (bulk loads: latency is known after the load). */
    void timeSecond(long t) {
      seconds.merge(Math.floorDiv(t, 1000L), 1L, Long::sum);
      minTime = Math.min(minTime, t);
      maxTime = Math.max(maxTime, t);
    }

    /** Latencies of the buffered event times, measured at {@code storedAt}. */
    void settle(long storedAt, long[] edges) {
      seconds.forEach((sec, n) -> {
        long lat = storedAt - (sec * 1000 + 500);
        int b = java.util.Arrays.binarySearch(edges, lat);
        hist[b >= 0 ? b : -b - 1] += n;
        fine.merge(fineBucket(lat), n, Long::sum);
      });
      if (!seconds.isEmpty()) {
        maxLatency = Math.max(maxLatency, storedAt - minTime);
      }
      seconds.clear();
      for (int i = 0; i < nTimes; i++) {
        long t = times[i];
        long lat = storedAt - t;
        minTime = Math.min(minTime, t);
        maxTime = Math.max(maxTime, t);
        maxLatency = Math.max(maxLatency, lat);
        int b = java.util.Arrays.binarySearch(edges, lat);
        hist[b >= 0 ? b : -b - 1]++;
        fine.merge(fineBucket(lat), 1L, Long::sum);
      }
      nTimes = 0;
      times = new long[16];
    }

    static int fineBucket(long latency) {
      return latency <= 0 ? 0 : (int) Math.floor(Math.log1p(latency) / FINE_GROWTH);
    }

    Row row(String table, String metric) {
      StringBuilder f = new StringBuilder();
      fine.forEach((b, n) -> f.append(f.length() == 0 ? "" : ",").append(b).append(':').append(n));
      StringBuilder h = new StringBuilder();
      for (long n : hist) {
        h.append(h.length() == 0 ? "" : ",").append(n);
      }
      boolean timed = maxTime != Long.MIN_VALUE;
      return RowFactory.create(table, metric, rows, cells, timed ? minTime : null, timed ? maxTime : null,
          timed ? maxLatency : null, h.toString(), f.toString());
    }

    void merge(Row r) {
      rows += r.getLong(2);
      cells += r.getLong(3);
      if (!r.isNullAt(4)) {
        minTime = Math.min(minTime, r.getLong(4));
        maxTime = Math.max(maxTime, r.getLong(5));
      }
      if (!r.isNullAt(6)) {
        maxLatency = Math.max(maxLatency, r.getLong(6));
      }
      String[] hs = r.getString(7).split(",");
      for (int i = 0; i < hs.length && i < hist.length && !hs[i].isEmpty(); i++) {
        hist[i] += Long.parseLong(hs[i]);
      }
      if (r.getString(8).startsWith("t")) {
        for (String pair : r.getString(8).substring(1).split(",")) {
          int colon = pair.indexOf(':');
          seconds.merge(Long.parseLong(pair.substring(0, colon)), Long.parseLong(pair.substring(colon + 1)), Long::sum);
        }
        return;
      }
      for (String pair : r.getString(8).split(",")) {
        if (!pair.isEmpty()) {
          int colon = pair.indexOf(':');
          fine.merge(Integer.parseInt(pair.substring(0, colon)), Long.parseLong(pair.substring(colon + 1)), Long::sum);
        }
      }
    }

    /** The report row with latencies still to be settled (the bulk load measures them later). */
    Row rowUnsettled(String table, String metric) {
      StringBuilder t = new StringBuilder();
      seconds.forEach((sec, n) -> t.append(t.length() == 0 ? "t" : ",").append(sec).append(':').append(n));
      boolean timed = maxTime != Long.MIN_VALUE;
      return RowFactory.create(table, metric, rows, cells, timed ? minTime : null, timed ? maxTime : null, null, "",
          t.toString());
    }

    /** The driver's line for event times gathered unsettled from the tasks, measured at {@code storedAt}. */
    String lineAt(long storedAt, long[] edges) {
      settle(storedAt, edges);
      return line();
    }

    String line() {
      Row r = row("", "");
      StringBuilder sb = new StringBuilder();
      sb.append(rows).append('\t').append(cells).append('\t');
      sb.append(r.isNullAt(4) ? "" : r.getLong(4)).append('\t');
      sb.append(r.isNullAt(5) ? "" : r.getLong(5)).append('\t');
      sb.append(r.isNullAt(6) ? "" : r.getLong(6)).append('\t');
      sb.append(r.getString(7)).append('\t').append(r.getString(8));
      return sb.toString();
    }
  }

  /** The {@link Put} of one mutation row (its cells at its explicit timestamp; null cells skipped). */
  static Put put(Row r, int iRow, int iTs, int iCells, String table) {
    byte[] key = bytes(r.get(iRow));
    if (key.length == 0) {
      throw new IllegalArgumentException("empty row key for table " + table);
    }
    long ts = r.getLong(iTs);
    Map<Object, Object> cells = r.getJavaMap(iCells);
    Put put = new Put(key);
    int n = 0;
    for (Map.Entry<Object, Object> cell : cells.entrySet()) {
      if (cell.getValue() == null) {
        continue;
      }
      String column = cell.getKey().toString();
      int colon = column.indexOf(':');
      if (colon <= 0) {
        throw new IllegalArgumentException("column is not family:qualifier: " + column);
      }
      put.addColumn(column.substring(0, colon).getBytes(StandardCharsets.UTF_8),
          column.substring(colon + 1).getBytes(StandardCharsets.UTF_8), ts, bytes(cell.getValue()));
      n++;
    }
    if (n == 0) {
      throw new IllegalArgumentException("mutation without any cell for table " + table + ": " + r);
    }
    return put;
  }

  private static Iterator<Row> writePartition(Iterator<Row> rows, String settings, long bufferBytes, int[] idx,
      long[] edges) {
    int iTable = idx[0];
    int iRow = idx[1];
    int iTs = idx[2];
    int iCells = idx[3];
    int iMetric = idx[4];
    int iTime = idx[5];
    Map<String, BufferedMutator> mutators = new HashMap<>();
    Map<String, Tally> counts = new TreeMap<>();
    try {
      Connection conn = null;
      while (rows.hasNext()) {
        Row r = rows.next();
        if (r.isNullAt(iTable) || r.isNullAt(iRow) || r.isNullAt(iTs)) {
          throw new IllegalArgumentException("mutation without table, row or timestamp: " + r);
        }
        String table = r.getString(iTable);
        String metric = iMetric < 0 || r.isNullAt(iMetric) ? "" : r.getString(iMetric);
        if (table.isEmpty()) {
          counts.computeIfAbsent("\t" + metric, k -> new Tally(edges.length)).rows++;
          continue;
        }
        Put put = put(r, iRow, iTs, iCells, table);
        int n = put.size();
        BufferedMutator m = mutators.get(table);
        if (m == null) {
          if (conn == null) {
            conn = HBaseSettings.connection(settings);
          }
          m = conn.getBufferedMutator(new BufferedMutatorParams(TableName.valueOf(table))
              .writeBufferSize(bufferBytes));
          mutators.put(table, m);
        }
        m.mutate(put);
        Tally c = counts.computeIfAbsent(table + "\t" + metric, k -> new Tally(edges.length));
        c.rows++;
        c.cells += n;
        if (iTime >= 0 && !r.isNullAt(iTime)) {
          c.time(r.getLong(iTime));
        }
      }
      for (BufferedMutator m : mutators.values()) {
        m.flush();
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } finally {
      for (BufferedMutator m : mutators.values()) {
        try {
          m.close();
        } catch (IOException e) {
          // close flushes: a failure here means mutations did not land; fail the task
          throw new UncheckedIOException(e);
        }
      }
    }
    long storedAt = System.currentTimeMillis();
    List<Row> out = new ArrayList<>();
    counts.forEach((k, c) -> {
      c.settle(storedAt, edges);
      int tab = k.indexOf('\t');
      out.add(c.row(k.substring(0, tab), k.substring(tab + 1)));
    });
    return out.iterator();
  }
}
