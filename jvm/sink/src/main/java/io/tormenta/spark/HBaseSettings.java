package io.tormenta.spark;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hbase.HBaseConfiguration;
import org.apache.hadoop.hbase.client.Connection;
import org.apache.hadoop.hbase.client.ConnectionFactory;

/**
 * HBase client settings as Python hands them over: one {@code key=value} per line
 * (e.g. {@code hbase.zookeeper.quorum=127.0.0.1:2181}). A plain string crosses py4j and Spark's
 * closure serializer unchanged; each JVM keeps one shared {@link Connection} per distinct string
 * (connections are heavyweight and thread-safe; tables and mutators are cheap and per task).
 */
public final class HBaseSettings {
  private static final Map<String, Connection> OPEN = new ConcurrentHashMap<>();

  static {
    Runtime.getRuntime().addShutdownHook(new Thread(HBaseSettings::closeAll, "tormenta-hbase-close"));
  }

  private HBaseSettings() {}

  /** Parses the lines into a sorted map (blank lines and {@code #} comments are skipped). */
  public static Map<String, String> parse(String settings) {
    Map<String, String> out = new TreeMap<>();
    for (String line : settings.split("\n")) {
      String t = line.strip();
      if (t.isEmpty() || t.startsWith("#")) {
        continue;
      }
      int eq = t.indexOf('=');
      if (eq <= 0) {
        throw new IllegalArgumentException("HBase setting is not key=value: " + t);
      }
      out.put(t.substring(0, eq).strip(), t.substring(eq + 1).strip());
    }
    return out;
  }

  public static Configuration configuration(String settings) {
    Configuration conf = HBaseConfiguration.create();
    parse(settings).forEach(conf::set);
    return conf;
  }

  /** The JVM-wide connection for these settings, opened on first use. */
  public static Connection connection(String settings) {
    return OPEN.computeIfAbsent(settings, s -> {
      try {
        return ConnectionFactory.createConnection(configuration(s));
      } catch (IOException e) {
        throw new UncheckedIOException("cannot connect to HBase with " + parse(s), e);
      }
    });
  }

  static void closeAll() {
    for (Connection c : OPEN.values()) {
      try {
        c.close();
      } catch (IOException ignored) {
        // the JVM is going away
      }
    }
    OPEN.clear();
  }
}
