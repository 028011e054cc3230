import json

import pytest

from tormenta.contracts import (
    GEO,
    SOCIAL,
    TABLES,
    ContractError,
    event_row_key,
    minute_bucket,
    table_name,
    validate,
)

pytestmark = pytest.mark.unit
NOW = 1_795_000_000_000


def social(**over):
    e = {"schema": "social.comment", "v": 1, "event_id": "pol-01-c1", "event_time": NOW, "source": "t",
         "sent_at": NOW, "page_id": "pol-01", "post_id": "p1", "author": "a", "text": "hola", "lang": "es"}
    e.update(over)
    return json.dumps(e).encode()


POISON = [
    (b"{nope", "invalid_json"),
    (b"[1]", "invalid_json"),
    (social(author=None), "missing_field:author"),
    (social(event_time="x"), "wrong_type:event_time"),
    (social(event_time=True), "wrong_type:event_time"),
    (social(event_time=1.5), "wrong_type:event_time"),
    (social(extra=1), "unexpected_field:extra"),
    (social(event_id=" "), "empty_key:event_id"),
    (social(page_id=""), "empty_key:page_id"),
    (social(text="x" * 20000), "oversize"),
    (social(event_time=NOW + 10 * 60_000), "event_time_in_future"),
    (social(event_time=NOW - 8 * 86_400_000), "event_time_too_old"),
    (social(v=2), "unknown_schema_version"),
    (social(schema="geo.position"), "unknown_schema_version"),
]


@pytest.mark.parametrize(("raw", "reason"), POISON)
def test_poison_reasons(raw, reason):
    with pytest.raises(ContractError) as err:
        validate(raw, SOCIAL, NOW)
    assert err.value.reason == reason


def test_good_event_and_lenient_strings():
    assert validate(social(), SOCIAL, NOW)["page_id"] == "pol-01"
    assert validate(social(author=42), SOCIAL, NOW)["author"] == 42  # JSON numbers read as text


def test_geo_ranges():
    e = {"schema": "geo.position", "v": 1, "event_id": "d-1", "event_time": NOW, "source": "t", "sent_at": NOW,
         "device_id": "d", "trip_id": "t", "lat": 40.4, "lon": -3.7, "speed_kmh": 30}
    assert validate(json.dumps(e).encode(), GEO, NOW)
    with pytest.raises(ContractError, match="out_of_range:lat"):
        validate(json.dumps({**e, "lat": 91}).encode(), GEO, NOW)


def test_row_keys_are_deterministic_and_salted():
    assert event_row_key("abc") == event_row_key("abc")
    salt, _, rest = event_row_key("abc").partition(b"|")
    assert len(salt) == 2 and rest == b"abc"
    assert minute_bucket(0) == "197001010000"


def test_table_names():
    assert table_name("dead_letters") == "tormenta_dead_letters"
    assert table_name("dead_letters", "t1") == "t1_dead_letters"
    with pytest.raises(KeyError):
        table_name("nope")
    with pytest.raises(ValueError):
        table_name("dead_letters", "x;drop")
    assert all(fams for fams in TABLES.values())


def test_time_is_checked_against_the_record_not_the_clock():
    old = NOW - 365 * 86_400_000
    raw = social(event_time=old)
    assert validate(raw, SOCIAL, old)  # a year-old record with its own year-old timestamp is fine
