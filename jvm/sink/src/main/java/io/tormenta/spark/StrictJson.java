package io.tormenta.spark;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import org.apache.spark.sql.SparkSession;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

import org.apache.spark.sql.api.java.UDF1;
import org.apache.spark.sql.api.java.UDF2;
import org.apache.spark.sql.types.DataTypes;

/**
 * What Spark's own JSON functions let through, refused: the SQL function
 * {@code tormenta_json_defect(value BINARY) -> STRING} returns null for one well-formed JSON
 * object in valid UTF-8, and otherwise the dead-letter reason of the record's bytes.
 *
 * <p>Spark's {@code parse_json} already refuses duplicate keys, NaN, a byte-order mark and lone
 * surrogates, but it reads only the first value (trailing content is ignored) and takes invalid
 * UTF-8 as replacement characters. The contract itself (fields, types, ranges) is checked in Spark
 * SQL over the parsed value; this class only judges the bytes.
 */
public final class StrictJson {
  public static final String FUNCTION = "tormenta_json_defect";
  /** Events are flat objects; anything nested this deep is refused before it costs anything. */
  static final int MAX_DEPTH = 16;

  private static final JsonFactory FACTORY = JsonFactory.builder()
      .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
      .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(MAX_DEPTH).build())
      .build();
  private static final ThreadLocal<CharsetDecoder> UTF8 = ThreadLocal.withInitial(() ->
      StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT));

  private StrictJson() {}

  /** Registers {@value #FUNCTION}{@code (value)} in the session (idempotent). */
  public static void register(SparkSession spark) {
    spark.udf().register(FUNCTION, (UDF1<byte[], String>) StrictJson::defect, DataTypes.StringType);
  }

  /**
   * Also registers {@value #FUNCTION}{@code (value, kind)}, which checks the object against the
   * kind's fields as well: {@code unexpected_field:<f>} (first by name), then in declaration order
   * {@code missing_field:<f>} (absent or null) and {@code wrong_type:<f>} (exact JSON types: a
   * string field takes a JSON string, a long an integer literal within 64 bits, a double any
   * number). {@code contracts}: {@code kind|field:type,field:type;kind|...}, written by Python
   * from tormenta.contracts (the one declaration of the contracts).
   */
  public static void register(SparkSession spark, String contracts) {
    register(spark);
    Map<String, LinkedHashMap<String, String>> spec = parseContracts(contracts);
    spark.udf().register(FUNCTION, (UDF2<byte[], String, String>) (v, k) -> defect(v, k == null ? null : spec.get(k)),
        DataTypes.StringType);
  }

  static Map<String, LinkedHashMap<String, String>> parseContracts(String contracts) {
    Map<String, LinkedHashMap<String, String>> out = new HashMap<>();
    for (String kind : contracts.split(";")) {
      if (kind.isBlank()) {
        continue;
      }
      int bar = kind.indexOf('|');
      LinkedHashMap<String, String> fields = new LinkedHashMap<>();
      for (String f : kind.substring(bar + 1).split(",")) {
        int colon = f.indexOf(':');
        fields.put(f.substring(0, colon), f.substring(colon + 1));
      }
      out.put(kind.substring(0, bar), fields);
    }
    return out;
  }

  /** Null when {@code value} is one JSON object in valid UTF-8, else the reason. */
  public static String defect(byte[] value) {
    return defect(value, null);
  }

  /** As {@link #defect(byte[])}, then the fields against {@code fields} (name -> string|long|double). */
  public static String defect(byte[] value, LinkedHashMap<String, String> fields) {
    if (value == null) {
      return "null_value";
    }
    try {
      UTF8.get().reset().decode(ByteBuffer.wrap(value));
    } catch (CharacterCodingException e) {
      return "invalid_utf8";
    }
    if (value.length >= 3 && (value[0] & 0xff) == 0xEF && (value[1] & 0xff) == 0xBB && (value[2] & 0xff) == 0xBF) {
      return "invalid_json"; // a byte-order mark: JSON text must not start with one (RFC 8259 8.1)
    }
    try (JsonParser p = FACTORY.createParser(value)) {
      if (p.nextToken() != JsonToken.START_OBJECT) {
        return "invalid_json";
      }
      String found = null;
      int depth = 1;
      String field = null;
      Map<String, String> top = new HashMap<>(); // top-level field -> JSON type
      while (depth > 0) {
        JsonToken t = p.nextToken();
        if (t == null) {
          return "invalid_json";
        }
        if (depth == 1 && t != JsonToken.FIELD_NAME && t != JsonToken.END_OBJECT && field != null) {
          top.put(field, typeOf(t, p));
        }
        switch (t) {
          case START_OBJECT, START_ARRAY -> depth++;
          case END_OBJECT, END_ARRAY -> depth--;
          case FIELD_NAME, VALUE_STRING -> {
            if (found == null) {
              found = textDefect(p.getText());
            }
            if (t == JsonToken.FIELD_NAME && depth == 1) {
              field = p.currentName();
            }
          }
          default -> { }
        }
      }
      if (p.nextToken() != null) {
        return "invalid_json"; // content after the object
      }
      if (found != null || fields == null) {
        return found;
      }
      return fieldDefect(top, fields);
    } catch (JsonProcessingException e) {
      return e.getMessage() != null && e.getMessage().startsWith("Duplicate field") ? "duplicate_key" : "invalid_json";
    } catch (IOException e) {
      return "invalid_json";
    }
  }

  private static String typeOf(JsonToken t, JsonParser p) throws IOException {
    switch (t) {
      case VALUE_STRING:
        return "string";
      case VALUE_NUMBER_INT:
        return p.getNumberType() == JsonParser.NumberType.BIG_INTEGER ? "bigint" : "long";
      case VALUE_NUMBER_FLOAT:
        return "float";
      case VALUE_NULL:
        return "null";
      default:
        return "other";
    }
  }

  private static String fieldDefect(Map<String, String> top, LinkedHashMap<String, String> fields) {
    String unexpected = null;
    for (String name : top.keySet()) {
      if (!fields.containsKey(name) && (unexpected == null || name.compareTo(unexpected) < 0)) {
        unexpected = name;
      }
    }
    if (unexpected != null) {
      return "unexpected_field:" + unexpected;
    }
    for (Map.Entry<String, String> f : fields.entrySet()) {
      String got = top.get(f.getKey());
      if (got == null || got.equals("null")) {
        return "missing_field:" + f.getKey();
      }
      boolean ok = switch (f.getValue()) {
        case "string" -> got.equals("string");
        case "long" -> got.equals("long");
        case "double" -> got.equals("long") || got.equals("bigint") || got.equals("float");
        default -> false;
      };
      if (!ok) {
        return "wrong_type:" + f.getKey();
      }
    }
    return null;
  }

  private static String textDefect(String s) {
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == 0) {
        return "nul_character";
      }
      if (Character.isHighSurrogate(c)) {
        if (i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
          i++;
          continue;
        }
        return "invalid_unicode";
      }
      if (Character.isLowSurrogate(c)) {
        return "invalid_unicode";
      }
    }
    return null;
  }
}
