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
import org.apache.spark.sql.api.java.UDF1;
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

  /** Registers {@value #FUNCTION} in the session (idempotent). */
  public static void register(SparkSession spark) {
    spark.udf().register(FUNCTION, (UDF1<byte[], String>) StrictJson::defect, DataTypes.StringType);
  }

  /** Null when {@code value} is one JSON object in valid UTF-8, else the reason. */
  public static String defect(byte[] value) {
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
      while (depth > 0) {
        JsonToken t = p.nextToken();
        if (t == null) {
          return "invalid_json";
        }
        switch (t) {
          case START_OBJECT, START_ARRAY -> depth++;
          case END_OBJECT, END_ARRAY -> depth--;
          case FIELD_NAME, VALUE_STRING -> {
            if (found == null) {
              found = textDefect(p.getText());
            }
          }
          default -> { }
        }
      }
      if (p.nextToken() != null) {
        return "invalid_json"; // content after the object
      }
      return found;
    } catch (JsonProcessingException e) {
      return e.getMessage() != null && e.getMessage().startsWith("Duplicate field") ? "duplicate_key" : "invalid_json";
    } catch (IOException e) {
      return "invalid_json";
    }
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
