import json

import pytest

from ingestors.runner import RateLimiter
from ingestors.sources.file_replay import FileReplay
from kinds.geo.contract import KIND as GEO
from kinds.geo.source import BadPosition, to_event
from kinds.social.contract import KIND as SOCIAL
from kinds.social.source import PageFeed
from tormenta.contracts import encode, validate

pytestmark = pytest.mark.unit


def drain(feed, n):
    out = []
    while len(out) < n:
        out += feed.poll(n - len(out))
    return out


def test_two_ingestors_share_a_hot_page_without_overlap():
    a = drain(PageFeed(["pol-01"], shard=0, shards=2), 500)
    b = drain(PageFeed(["pol-01"], shard=1, shards=2), 500)
    one = drain(PageFeed(["pol-01"]), 1000)
    ids_a, ids_b = {e["event_id"] for e in a}, {e["event_id"] for e in b}
    assert not ids_a & ids_b
    assert ids_a | ids_b == {e["event_id"] for e in one}


def test_feed_is_deterministic_and_valid():
    e1 = drain(PageFeed(["pol-02"], seed=1), 20)
    e2 = drain(PageFeed(["pol-02"], seed=1), 20)
    strip = [{k: v for k, v in e.items() if k != "event_time"} for e in e1]
    assert strip == [{k: v for k, v in e.items() if k != "event_time"} for e in e2]
    for e in e1:
        e["sent_at"] = e["event_time"]
        validate(encode(e), SOCIAL, e["event_time"])


def test_storm_multiplies_one_page():
    feed = PageFeed(["pol-01", "pol-02"], storm_page="pol-01", storm_factor=50)
    events = drain(feed, 5100)
    hot = sum(e["page_id"] == "pol-01" for e in events)
    assert hot == 5000 and feed.rate_multiplier() == pytest.approx(25.5)


def test_rate_limiter():
    t = [0.0]
    lim = RateLimiter(100, clock=lambda: t[0])
    assert lim.take(1000) == 0
    t[0] = 0.5
    assert lim.take(1000) == 50
    t[0] = 10.0
    assert lim.take(1000) == 100  # burst capped at one second of rate


def test_phone_position_to_event():
    p = {"device_id": "dev-1", "trip_id": "t", "seq": 3, "lat": 40, "lon": -3.7, "speed_kmh": 20, "time": 1000}
    e = to_event(p, "src")
    assert e["event_id"] == "dev-1-3" and e["lat"] == 40.0
    e["sent_at"] = 1000
    validate(encode(e), GEO, 1000)
    for bad, reason in [({**p, "lat": "x"}, "wrong_type:lat"), ({**p, "device_id": " "}, "empty_key"),
                        ({k: v for k, v in p.items() if k != "seq"}, "missing_field:seq"), ([], "object")]:
        with pytest.raises(BadPosition, match=reason):
            to_event(bad, "src")


def test_file_replay_jsonl_and_csv(tmp_path):
    jl = tmp_path / "e.jsonl"
    jl.write_text(json.dumps({"event_id": "a"}) + "\n\n" + json.dumps({"event_id": "b"}) + "\n")
    r = FileReplay(jl, SOCIAL)
    assert [e["event_id"] for e in r.poll(10)] == ["a", "b"] and r.poll(10) is None
    csv_path = tmp_path / "g.csv"
    csv_path.write_text("event_id,event_time,lat\nx,5,1.5\n")
    row = FileReplay(csv_path, GEO).poll(5)[0]
    assert row["event_time"] == 5 and row["lat"] == 1.5
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        FileReplay(bad, SOCIAL).poll(5)


def test_a_device_token_is_the_device_s_own(tmp_path):
    from tormenta.devices import DeviceKeyError, device_token, load_key, new_key, token_ok

    (tmp_path / "k").write_text(new_key() + "\n")
    key = load_key(tmp_path / "k")
    assert token_ok(key, "dev-1", device_token(key, "dev-1"))
    assert not token_ok(key, "dev-2", device_token(key, "dev-1"))  # one phone's token is not another's
    assert not token_ok(key, "dev-1", None) and not token_ok(key, "dev-1", 12345)
    assert not token_ok(load_key_of(tmp_path, new_key()), "dev-1", device_token(key, "dev-1"))  # another key
    with pytest.raises(DeviceKeyError, match="no device key"):
        load_key(tmp_path / "missing")
    (tmp_path / "short").write_text("abc")
    with pytest.raises(DeviceKeyError, match="too short"):
        load_key(tmp_path / "short")


def load_key_of(tmp_path, text):
    from tormenta.devices import load_key

    (tmp_path / "other").write_text(text)
    return load_key(tmp_path / "other")


def test_an_endpoint_beyond_loopback_without_tokens_refuses_to_start(capsys):
    from ingestors import runner

    rc = runner.main(["geo-http", "--host", "0.0.0.0", "--port", "0", "--no-device-tokens", "--bootstrap", "127.0.0.1:1"])
    assert rc == 78
    assert "beyond loopback" in capsys.readouterr().out


def test_an_endpoint_without_its_key_file_refuses_to_start(tmp_path, capsys):
    from ingestors import fleet, runner

    missing = str(tmp_path / "none.key")
    assert runner.main(["geo-http", "--port", "0", "--device-key-file", missing, "--bootstrap", "127.0.0.1:1"]) == 78
    assert "no device key" in capsys.readouterr().out
    assert fleet.main(["--endpoints", "http://127.0.0.1:1", "--device-key-file", missing]) == 78
