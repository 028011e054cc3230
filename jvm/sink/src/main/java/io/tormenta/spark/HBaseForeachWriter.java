package io.tormenta.spark;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.HashMap;
import java.util.Map;

import org.apache.hadoop.hbase.TableName;
import org.apache.hadoop.hbase.client.BufferedMutator;
import org.apache.hadoop.hbase.client.BufferedMutatorParams;
import org.apache.spark.sql.ForeachWriter;
import org.apache.spark.sql.Row;

/**
 * The streaming sink of the real-time lane: a {@link ForeachWriter} of mutation rows (the columns
 * of {@link HBaseWriter}: {@code table}, {@code row}, {@code ts}, {@code cells}; a row whose table
 * is the empty string is skipped), written through one {@link BufferedMutator} per table.
 *
 * <p>Spark's real-time mode accepts a foreach sink but not {@code foreachBatch}, and hands every
 * row to {@link #process} as it arrives, for the whole of a long batch. The mutators therefore
 * flush on a timer (a row buffered for {@code flushMs}, looked at every {@code flushMs / 2}) as well as when
 * their buffer fills, and on {@link #close}: a row reaches HBase about 1.5 {@code flushMs} at most after it
 * reached the writer. A mutation the cluster
 * refuses fails the task on the next flush (the mutator's default listener throws).
 *
 * <p>Retry: idempotent, as {@link HBaseWriter}: every cell carries its explicit timestamp, so a
 * batch Spark runs again rewrites the same cells.
 */
public final class HBaseForeachWriter extends ForeachWriter<Row> {
  private static final long serialVersionUID = 1L;

  private final String settings;
  private final long bufferBytes;
  private final long flushMs;
  private transient Map<String, BufferedMutator> mutators;
  private transient int[] idx;

  public HBaseForeachWriter(String settings, long bufferBytes, long flushMs) {
    if (flushMs <= 0) {
      throw new IllegalArgumentException("flushMs must be positive: " + flushMs);
    }
    this.settings = settings;
    this.bufferBytes = bufferBytes;
    this.flushMs = flushMs;
  }

  @Override
  public boolean open(long partitionId, long epochId) {
    mutators = new HashMap<>();
    idx = null;
    return true;
  }

  @Override
  public void process(Row r) {
    if (idx == null) {
      idx = new int[] {r.fieldIndex("table"), r.fieldIndex("row"), r.fieldIndex("ts"), r.fieldIndex("cells")};
    }
    if (r.isNullAt(idx[0]) || r.isNullAt(idx[1]) || r.isNullAt(idx[2])) {
      throw new IllegalArgumentException("mutation without table, row or timestamp: " + r);
    }
    String table = r.getString(idx[0]);
    if (table.isEmpty()) {
      return;
    }
    try {
      mutator(table).mutate(HBaseWriter.put(r, idx[1], idx[2], idx[3], table));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private BufferedMutator mutator(String table) throws IOException {
    BufferedMutator m = mutators.get(table);
    if (m == null) {
      m = HBaseSettings.connection(settings).getBufferedMutator(
          new BufferedMutatorParams(TableName.valueOf(table)).writeBufferSize(bufferBytes)
              .setWriteBufferPeriodicFlushTimeoutMs(flushMs)
              // the timer looks every tick (1 s by default) whether the oldest buffered mutation is older than flushMs
              .setWriteBufferPeriodicFlushTimerTickMs(Math.max(1, flushMs / 2)));
      mutators.put(table, m);
    }
    return m;
  }

  @Override
  public void close(Throwable error) {
    IOException failed = null;
    for (BufferedMutator m : mutators.values()) {
      try {
        m.close(); // flushes: a failure means mutations did not land
      } catch (IOException e) {
        failed = failed == null ? e : failed;
      }
    }
    mutators.clear();
    if (failed != null && error == null) {
      throw new UncheckedIOException(failed);
    }
  }
}
