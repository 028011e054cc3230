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
import java.util.UUID;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.hbase.KeyValue;
import org.apache.hadoop.hbase.TableName;
import org.apache.hadoop.hbase.io.hfile.CacheConfig;
import org.apache.hadoop.hbase.io.hfile.HFileContextBuilder;
import org.apache.hadoop.hbase.mapreduce.HFileOutputFormat2;
import org.apache.hadoop.hbase.regionserver.BloomType;
import org.apache.hadoop.hbase.regionserver.HStoreFile;
import org.apache.hadoop.hbase.regionserver.StoreFileWriter;
import org.apache.hadoop.hbase.tool.BulkLoadHFiles;
import org.apache.hadoop.hbase.util.Bytes;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.functions;

/**
 * Writes a DataFrame of mutations (the same columns as {@link HBaseWriter}) as HFiles and bulk
 * loads them: the batch window's path, where a BufferedMutator per row would cost the region
 * servers a write each. Rows are sorted by table and row key within each partition; each task
 * writes one HFile per table and column family ({@link StoreFileWriter}, the metadata
 * {@link HFileOutputFormat2} gives its files), then {@link BulkLoadHFiles} moves every table's
 * files into its regions (splitting a file that spans a region boundary).
 *
 * <p>Retry: idempotent. Cells carry their explicit timestamps, so loading the same mutations again
 * leaves every cell as it was (the newest version of a cell with the same timestamp is the same
 * value). The staging folder is the caller's and is emptied first.
 */
public final class HFileBulkLoad {
  private HFileBulkLoad() {}

  /**
   * Writes, loads and returns the same report lines as {@link HBaseWriter#write}; latencies are
   * measured when the load of all tables has returned.
   */
  public static String load(Dataset<Row> mutations, String settings, String stagingDir, int partitions, long[] edges)
      throws IOException {
    Configuration conf = HBaseSettings.configuration(settings);
    Path staging = new Path(stagingDir);
    FileSystem fs = staging.getFileSystem(conf);
    fs.delete(staging, true);
    fs.mkdirs(staging);
    int iMetric = java.util.Arrays.asList(mutations.schema().fieldNames()).indexOf("metric");
    int iTime = java.util.Arrays.asList(mutations.schema().fieldNames()).indexOf("event_time");
    Dataset<Row> sorted = mutations.repartition(partitions, functions.col("table"), functions.col("row"))
        .sortWithinPartitions("table", "row");
    StructTypeHolder s = new StructTypeHolder(sorted);
    MapPartitionsFunction<Row, Row> task = rows -> writeFiles(rows, settings, stagingDir, s, iMetric, iTime, edges);
    List<Row> parts = sorted.mapPartitions(task, Encoders.row(HBaseWriter.COUNTS)).collectAsList();

    Map<String, HBaseWriter.Tally> total = new TreeMap<>();
    for (Row r : parts) {
      total.computeIfAbsent(r.getString(0) + "\t" + r.getString(1), k -> new HBaseWriter.Tally(edges.length)).merge(r);
    }
    BulkLoadHFiles loader = BulkLoadHFiles.create(conf);
    for (FileStatus tableDir : fs.listStatus(staging)) {
      if (tableDir.isDirectory()) {
        TableName table = TableName.valueOf(tableDir.getPath().getName());
        loader.bulkLoad(table, tableDir.getPath());
      }
    }
    long loadedAt = System.currentTimeMillis();
    StringBuilder out = new StringBuilder();
    total.forEach((k, t) -> out.append(k).append('\t').append(t.lineAt(loadedAt, edges)).append('\n'));
    fs.delete(staging, true);
    return out.toString();
  }

  /** Column positions, computed on the driver (the closure carries ints, not the schema). */
  static final class StructTypeHolder implements java.io.Serializable {
    private static final long serialVersionUID = 1L;
    final int table;
    final int row;
    final int ts;
    final int cells;

    StructTypeHolder(Dataset<Row> df) {
      table = df.schema().fieldIndex("table");
      row = df.schema().fieldIndex("row");
      ts = df.schema().fieldIndex("ts");
      cells = df.schema().fieldIndex("cells");
    }
  }

  private static Iterator<Row> writeFiles(Iterator<Row> rows, String settings, String stagingDir, StructTypeHolder s,
      int iMetric, int iTime, long[] edges) throws IOException {
    Configuration conf = HBaseSettings.configuration(settings);
    FileSystem fs = new Path(stagingDir).getFileSystem(conf);
    Map<String, StoreFileWriter> writers = new HashMap<>();
    Map<String, HBaseWriter.Tally> counts = new TreeMap<>();
    String file = UUID.randomUUID().toString().replace("-", "");
    String lastTable = null;
    byte[] lastRow = null;
    // cells of the current row, by family then qualifier (HFiles want them in that order)
    TreeMap<byte[], TreeMap<byte[], byte[]>> pending = new TreeMap<>(Bytes.BYTES_COMPARATOR);
    long pendingTs = 0;
    try {
      while (rows.hasNext()) {
        Row r = rows.next();
        String table = r.getString(s.table);
        String metric = iMetric < 0 || r.isNullAt(iMetric) ? "" : r.getString(iMetric);
        HBaseWriter.Tally tally = counts.computeIfAbsent(table + "\t" + metric, k -> new HBaseWriter.Tally(edges.length));
        tally.rows++;
        if (table.isEmpty()) {
          continue; // count-only
        }
        if (iTime >= 0 && !r.isNullAt(iTime)) {
          tally.timeSecond(r.getLong(iTime));
        }
        byte[] key = HBaseWriter.bytes(r.get(s.row));
        if (lastRow != null && (!table.equals(lastTable) || !Bytes.equals(key, lastRow))) {
          flushRow(writers, fs, conf, stagingDir, file, lastTable, lastRow, pending, pendingTs);
          pending.clear();
        }
        lastTable = table;
        lastRow = key;
        pendingTs = r.getLong(s.ts);
        Map<Object, Object> cells = r.getJavaMap(s.cells);
        for (Map.Entry<Object, Object> cell : cells.entrySet()) {
          if (cell.getValue() == null) {
            continue;
          }
          String column = cell.getKey().toString();
          int colon = column.indexOf(':');
          pending.computeIfAbsent(column.substring(0, colon).getBytes(StandardCharsets.UTF_8),
              f -> new TreeMap<>(Bytes.BYTES_COMPARATOR))
              .put(column.substring(colon + 1).getBytes(StandardCharsets.UTF_8), HBaseWriter.bytes(cell.getValue()));
          tally.cells++;
        }
      }
      if (lastRow != null) {
        flushRow(writers, fs, conf, stagingDir, file, lastTable, lastRow, pending, pendingTs);
      }
    } finally {
      for (StoreFileWriter w : writers.values()) {
        w.appendFileInfo(HStoreFile.BULKLOAD_TIME_KEY, Bytes.toBytes(System.currentTimeMillis()));
        w.appendFileInfo(HStoreFile.MAJOR_COMPACTION_KEY, Bytes.toBytes(false));
        w.appendFileInfo(HStoreFile.EXCLUDE_FROM_MINOR_COMPACTION_KEY, Bytes.toBytes(false));
        w.appendTrackedTimestampsToMetadata();
        w.close();
      }
    }
    List<Row> out = new ArrayList<>();
    counts.forEach((k, c) -> {
      int tab = k.indexOf('\t');
      out.add(c.rowUnsettled(k.substring(0, tab), k.substring(tab + 1)));
    });
    return out.iterator();
  }

  private static void flushRow(Map<String, StoreFileWriter> writers, FileSystem fs, Configuration conf,
      String stagingDir, String file, String table, byte[] row,
      TreeMap<byte[], TreeMap<byte[], byte[]>> cells, long ts) throws IOException {
    for (Map.Entry<byte[], TreeMap<byte[], byte[]>> fam : cells.entrySet()) {
      String family = Bytes.toString(fam.getKey());
      StoreFileWriter w = writers.get(table + "/" + family);
      if (w == null) {
        Path dir = new Path(new Path(new Path(stagingDir), table), family);
        fs.mkdirs(dir);
        w = new StoreFileWriter.Builder(conf, CacheConfig.DISABLED, fs)
            .withFilePath(new Path(dir, file))
            .withBloomType(BloomType.ROW)
            .withFileContext(new HFileContextBuilder().withTableName(Bytes.toBytes(table))
                .withColumnFamily(fam.getKey()).build())
            .build();
        writers.put(table + "/" + family, w);
      }
      for (Map.Entry<byte[], byte[]> q : fam.getValue().entrySet()) {
        w.append(new KeyValue(row, fam.getKey(), q.getKey(), ts, KeyValue.Type.Put, q.getValue()));
      }
    }
  }
}
