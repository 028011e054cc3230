"""Every class of bad input the contract must turn into a dead letter, with the reason it must get.

Shared by the parity test (Python reference validator vs the Spark SQL classification) and the
real-stack test that sends them all through a running streaming query.
"""

from __future__ import annotations

import json

NOW = 1_795_000_000_000


def _social(now: int = NOW, **over) -> dict:
    e = {"schema": "social.comment", "v": 1, "event_id": "pol-01-c1", "event_time": now, "source": "t",
         "sent_at": now, "page_id": "pol-01", "post_id": "p1", "author": "a", "text": "hola", "lang": "es"}  # fmt: skip
    e.update(over)
    return e


def _geo(now: int = NOW, **over) -> dict:
    e = {"schema": "geo.position", "v": 1, "event_id": "dev-1-1", "event_time": now, "source": "t",
         "sent_at": now, "device_id": "dev-1", "trip_id": "t1", "lat": 40.4, "lon": -3.7, "speed_kmh": 30.0}  # fmt: skip
    e.update(over)
    return e


def enc(event: dict) -> bytes:
    return json.dumps(event).encode()


def _replace(event: dict, field: str, literal: str) -> bytes:
    """The event with one field's JSON value written as ``literal`` (what json.dumps cannot make)."""
    marker = "__LITERAL__"
    return json.dumps({**event, field: marker}).replace(f'"{marker}"', literal).encode()


def _nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


# (name, kind, raw value, Kafka key, expected reason). Keys are the event's entity unless the case
# is about the key. Ids are unique per case so no case is another's duplicate.
def cases(now: int = NOW, prefix: str = "") -> list[tuple[str, str, bytes | None, bytes | None, str]]:
    """The catalogue with event times around ``now`` (the Kafka record time) and ids prefixed."""

    def social(**over):
        if isinstance(over.get("event_id"), str) and over["event_id"].strip():
            over["event_id"] = prefix + over["event_id"]
        return _social(now, **over)

    def geo(**over):
        over["event_id"] = prefix + over.get("event_id", "g")
        return _geo(now, **over)

    NOW = now  # noqa: N806 - the cases below read as if written at NOW
    return [
        # a number, object or array where a string is expected, and the reverse
        ("number for string", "social", enc(social(event_id="b01", author=42)), b"pol-01", "wrong_type:author"),
        ("object for string", "social", enc(social(event_id="b02", author={"n": "a"})), b"pol-01", "wrong_type:author"),
        ("array for string", "social", enc(social(event_id="b03", text=["hola"])), b"pol-01", "wrong_type:text"),
        ("bool for string", "social", enc(social(event_id="b04", lang=True)), b"pol-01", "wrong_type:lang"),
        ("string for long", "social", enc(social(event_id="b05", event_time=str(NOW))), b"pol-01",
         "wrong_type:event_time"),
        ("string for double", "geo", enc(geo(event_id="b06", lat="40.4")), b"dev-1", "wrong_type:lat"),
        ("float for long", "social", enc(social(event_id="b07", sent_at=1.5)), b"pol-01", "wrong_type:sent_at"),
        ("number for id", "social", enc(social(event_id=12345)), b"pol-01", "wrong_type:event_id"),
        # NaN, Infinity, 1e400
        ("NaN", "geo", _replace(geo(event_id="b08"), "lat", "NaN"), b"dev-1", "invalid_json"),
        ("Infinity", "geo", _replace(geo(event_id="b09"), "lon", "Infinity"), b"dev-1", "invalid_json"),
        ("-Infinity", "geo", _replace(geo(event_id="b10"), "speed_kmh", "-Infinity"), b"dev-1", "invalid_json"),
        ("1e400 double", "geo", _replace(geo(event_id="b11"), "speed_kmh", "1e400"), b"dev-1", "out_of_range:speed_kmh"),
        ("1e400 long", "social", _replace(social(event_id="b12"), "event_time", "1e400"), b"pol-01",
         "wrong_type:event_time"),
        # integer literals too large for a double (or a long), deep nesting, lone surrogates
        ("huge integer double", "geo", _replace(geo(event_id="b13"), "lat", "1" + "0" * 400), b"dev-1",
         "out_of_range:lat"),
        ("huge integer long", "social", _replace(social(event_id="b14"), "event_time", "9" * 30), b"pol-01",
         "wrong_type:event_time"),
        ("deep nesting", "social", _replace(social(event_id="b15"), "text", _nested(5000)), b"pol-01", "invalid_json"),
        ("nesting past the limit", "social", _replace(social(event_id="b16"), "text", _nested(20)), b"pol-01",
         "invalid_json"),
        ("lone surrogate", "social", _replace(social(event_id="b17"), "text", '"x\\ud800y"'), b"pol-01",
         "invalid_unicode"),
        # duplicate keys, BOM, invalid UTF-8 (value or key), NUL
        ("duplicate key", "social", enc(social(event_id="b18"))[:-1] + b', "author": "b"}', b"pol-01", "duplicate_key"),
        ("UTF-8 BOM", "social", b"\xef\xbb\xbf" + enc(social(event_id="b19")), b"pol-01", "invalid_json"),
        ("invalid UTF-8 value", "social", _replace(social(event_id="b20"), "text", '"x"').replace(b'"x"', b'"\xff\xfe"'),
         b"pol-01", "invalid_utf8"),
        ("invalid UTF-8 key", "social", enc(social(event_id="b21")), b"pol-\xff", "key_mismatch:page_id"),
        ("escaped NUL", "social", _replace(social(event_id="b22"), "text", '"a\\u0000b"'), b"pol-01", "nul_character"),
        ("raw NUL byte", "social", enc(social(event_id="b23"))[:-1] + b', "x": "\x00"}', b"pol-01", "invalid_json"),
        # a null value, a null key
        ("null value", "social", None, b"pol-01", "null_value"),
        ("null key", "social", enc(social(event_id="b24")), None, "key_mismatch:page_id"),
        ("JSON null field", "social", enc(social(event_id="b25", author=None)), b"pol-01", "missing_field:author"),
        # ids containing '|' or newlines (they would make composite row keys ambiguous)
        ("pipe in event id", "social", enc(social(event_id="b26|x")), b"pol-01", "bad_id:event_id"),
        ("newline in page id", "social", enc(social(event_id="b27", page_id="pol-01\n")), b"pol-01\n", "bad_id:page_id"),
        ("pipe in trip id", "geo", enc(geo(event_id="b28", trip_id="t|1")), b"dev-1", "bad_id:trip_id"),
        ("tab in device id", "geo", enc(geo(event_id="b29", device_id="dev\t1")), b"dev\t1", "bad_id:device_id"),
        # and the contract's own classes
        ("not JSON", "social", b"{nope", b"pol-01", "invalid_json"),
        ("not an object", "social", b"[1, 2]", b"pol-01", "invalid_json"),
        ("trailing content", "social", enc(social(event_id="b30")) + b' {"x": 1}', b"pol-01", "invalid_json"),
        ("unknown field", "social", enc(social(event_id="b31", colour="red")), b"pol-01", "unexpected_field:colour"),
        ("blank id", "social", enc(social(event_id=" \u3000 ")), b"pol-01", "empty_key:event_id"),
        ("oversize", "social", enc(social(event_id="b32", text="x" * 20000)), b"pol-01", "oversize"),
        ("future", "social", enc(social(event_id="b33", event_time=NOW + 3_600_000)), b"pol-01", "event_time_in_future"),
        ("too old", "social", enc(social(event_id="b34", event_time=NOW - 30 * 86_400_000)), b"pol-01",
         "event_time_too_old"),
        ("schema version", "social", enc(social(event_id="b35", v=2)), b"pol-01", "unknown_schema_version"),
        ("wrong key", "social", enc(social(event_id="b36")), b"pol-02", "key_mismatch:page_id"),
        ("lat out of range", "geo", enc(geo(event_id="b37", lat=123.0)), b"dev-1", "out_of_range:lat"),
    ]


CASES = cases()


def social(**over) -> dict:
    return _social(NOW, **over)


def geo(**over) -> dict:
    return _geo(NOW, **over)
