import pytest

from tormenta.geo import DeviceState, Zone, haversine_m, process_device, zone_of

pytestmark = pytest.mark.unit
ZONES = [Zone("a", "c", 0, 1, 0, 1), Zone("b", "c", 1, 2, 0, 1)]


def pos(i, lat, lon, t, trip="t1"):
    return {"event_id": f"e{i}", "event_time": t, "lat": lat, "lon": lon, "speed_kmh": 10.0, "trip_id": trip}


def test_haversine_one_degree_of_latitude():
    assert haversine_m(0, 0, 1, 0) == pytest.approx(111_195, rel=1e-3)


def test_zone_lookup():
    assert zone_of(0.5, 0.5, ZONES) == "a" and zone_of(1.5, 0.5, ZONES) == "b" and zone_of(5, 5, ZONES) == ""


def test_track_distance_zones_and_state():
    res = process_device([pos(2, 1.5, 0.5, 2000), pos(1, 0.5, 0.5, 1000)], None, ZONES)  # any order
    assert [(z["from_zone"], z["to_zone"]) for z in res.zone_events] == [("", "a"), ("a", "b")]
    assert res.trips["t1"]["distance_m"] == pytest.approx(haversine_m(0.5, 0.5, 1.5, 0.5))
    assert res.per_event["e2"][1] == pytest.approx(haversine_m(0.5, 0.5, 1.5, 0.5) / 1 * 3.6)
    assert res.state == DeviceState(1.5, 0.5, 2000, "b", "t1")


def test_split_in_two_batches_equals_one_batch():
    track = [pos(i, 0.1 * i, 0.5, 1000 * i) for i in range(1, 15)]
    whole = process_device(track, None, ZONES)
    first = process_device(track[:6], None, ZONES)
    second = process_device(track[6:], first.state, ZONES)
    assert first.trips["t1"]["distance_m"] + second.trips["t1"]["distance_m"] == pytest.approx(
        whole.trips["t1"]["distance_m"])
    assert first.zone_events + second.zone_events == whole.zone_events
    assert second.state == whole.state


def test_new_trip_does_not_add_distance_from_the_old_one():
    res = process_device([pos(1, 0.5, 0.5, 1000, "t1"), pos(2, 0.6, 0.5, 2000, "t2")], None, ZONES)
    assert res.trips["t2"]["distance_m"] == 0
