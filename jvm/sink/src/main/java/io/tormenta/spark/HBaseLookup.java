package io.tormenta.spark;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import org.apache.hadoop.hbase.TableName;
import org.apache.hadoop.hbase.client.Connection;
import org.apache.hadoop.hbase.client.Get;
import org.apache.hadoop.hbase.client.Result;
import org.apache.hadoop.hbase.client.Table;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * Adds HBase cells to the rows of a DataFrame with batched gets from the executors: the labels of
 * events already stored (cross-batch duplicates), a device's state "as of before this batch",
 * reference rows for enrichment. One multi-get per {@code chunk} rows and table, never one request
 * per record.
 *
 * <p>The result is the input plus one string column per requested cell (null when absent). With
 * {@code maxTimestampExclusive > 0} only cells older than it are seen, so a replayed batch reads
 * what its first attempt read. With {@code cacheSeconds > 0} found rows are kept per JVM for that
 * long: small, slowly changing reference tables, or cells read as of a batch's timestamp (which
 * that batch's own writes, at later timestamps, cannot change). Read-only: retries are free.
 */
public final class HBaseLookup {
  private static final int CHUNK = 1000;
  /** Past this many entries the cache is emptied (it holds reference rows and one batch's state). */
  private static final int CACHE_LIMIT = 200_000;
  private static final Map<String, Cached> CACHE = new ConcurrentHashMap<>();

  private record Cached(String[] values, long loadedAtMs) {}

  private HBaseLookup() {}

  /**
   * @param tableColumn name of a string column holding the physical table of each row
   * @param keyColumn name of a string or binary column holding the row key
   * @param columns cells to read, {@code "family:qualifier"}
   * @param aliases names of the added columns, one per cell
   */
  public static Dataset<Row> lookup(Dataset<Row> input, String tableColumn, String keyColumn, String[] columns,
      String[] aliases, long maxTimestampExclusive, long cacheSeconds, String settings) {
    if (columns.length != aliases.length || columns.length == 0) {
      throw new IllegalArgumentException("one alias per column, at least one column");
    }
    StructType in = input.schema();
    StructType out = in;
    for (String alias : aliases) {
      out = out.add(alias, DataTypes.StringType, true);
    }
    int iTable = in.fieldIndex(tableColumn);
    int iKey = in.fieldIndex(keyColumn);
    int width = in.size();
    byte[][] fams = new byte[columns.length][];
    byte[][] quals = new byte[columns.length][];
    for (int i = 0; i < columns.length; i++) {
      int colon = columns[i].indexOf(':');
      if (colon <= 0) {
        throw new IllegalArgumentException("column is not family:qualifier: " + columns[i]);
      }
      fams[i] = columns[i].substring(0, colon).getBytes(StandardCharsets.UTF_8);
      quals[i] = columns[i].substring(colon + 1).getBytes(StandardCharsets.UTF_8);
    }
    MapPartitionsFunction<Row, Row> task = rows -> new Iterator<>() {
      private Iterator<Row> current = List.<Row>of().iterator();

      @Override
      public boolean hasNext() {
        while (!current.hasNext() && rows.hasNext()) {
          List<Row> chunk = new ArrayList<>(CHUNK);
          while (rows.hasNext() && chunk.size() < CHUNK) {
            chunk.add(rows.next());
          }
          current = enrich(chunk, settings, iTable, iKey, width, fams, quals, maxTimestampExclusive,
              cacheSeconds).iterator();
        }
        return current.hasNext();
      }

      @Override
      public Row next() {
        hasNext();
        return current.next();
      }
    };
    return input.mapPartitions(task, Encoders.row(out));
  }

  private static List<Row> enrich(List<Row> chunk, String settings, int iTable, int iKey, int width,
      byte[][] fams, byte[][] quals, long maxTs, long cacheSeconds) {
    String[][] found = new String[chunk.size()][];
    Map<String, List<Integer>> misses = new HashMap<>();
    long now = System.currentTimeMillis();
    for (int i = 0; i < chunk.size(); i++) {
      Row r = chunk.get(i);
      if (r.isNullAt(iKey) || r.isNullAt(iTable)) {
        found[i] = new String[fams.length];
        continue;
      }
      if (cacheSeconds > 0) {
        Cached c = CACHE.get(cacheKey(r.getString(iTable), HBaseWriter.bytes(r.get(iKey)), fams, quals, maxTs));
        if (c != null && now - c.loadedAtMs() < cacheSeconds * 1000) {
          found[i] = c.values();
          continue;
        }
      }
      misses.computeIfAbsent(r.getString(iTable), t -> new ArrayList<>()).add(i);
    }
    if (!misses.isEmpty()) {
      Connection conn = HBaseSettings.connection(settings);
      for (Map.Entry<String, List<Integer>> e : misses.entrySet()) {
        List<Get> gets = new ArrayList<>(e.getValue().size());
        for (int i : e.getValue()) {
          Get g = new Get(HBaseWriter.bytes(chunk.get(i).get(iKey)));
          for (int c = 0; c < fams.length; c++) {
            g.addColumn(fams[c], quals[c]);
          }
          try {
            if (maxTs > 0) {
              g.setTimeRange(0, maxTs);
            }
            g.readVersions(1);
          } catch (IOException ex) {
            throw new UncheckedIOException(ex);
          }
          gets.add(g);
        }
        Result[] results;
        try (Table table = conn.getTable(TableName.valueOf(e.getKey()))) {
          results = table.get(gets);
        } catch (IOException ex) {
          throw new UncheckedIOException("batched get from " + e.getKey() + " failed", ex);
        }
        for (int j = 0; j < results.length; j++) {
          int i = e.getValue().get(j);
          String[] values = new String[fams.length];
          for (int c = 0; c < fams.length; c++) {
            byte[] v = results[j].getValue(fams[c], quals[c]);
            values[c] = v == null ? null : new String(v, StandardCharsets.UTF_8);
          }
          found[i] = values;
          if (cacheSeconds > 0) {
            if (CACHE.size() > CACHE_LIMIT) {
              CACHE.clear();
            }
            CACHE.put(cacheKey(e.getKey(), HBaseWriter.bytes(chunk.get(i).get(iKey)), fams, quals, maxTs),
                new Cached(values, now));
          }
        }
      }
    }
    List<Row> out = new ArrayList<>(chunk.size());
    for (int i = 0; i < chunk.size(); i++) {
      Object[] values = new Object[width + fams.length];
      Row r = chunk.get(i);
      for (int c = 0; c < width; c++) {
        values[c] = r.get(c);
      }
      System.arraycopy(found[i], 0, values, width, fams.length);
      out.add(RowFactory.create(values));
    }
    return out;
  }

  private static String cacheKey(String table, byte[] key, byte[][] fams, byte[][] quals, long maxTs) {
    StringBuilder sb = new StringBuilder(table).append('\u0000').append(maxTs).append('\u0000');
    sb.append(java.util.Base64.getEncoder().encodeToString(key));
    for (int c = 0; c < fams.length; c++) {
      sb.append('\u0000').append(new String(fams[c], StandardCharsets.UTF_8)).append(':')
          .append(new String(quals[c], StandardCharsets.UTF_8));
    }
    return sb.toString();
  }
}
