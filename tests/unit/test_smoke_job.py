import json

import pytest

from spark_jobs.smoke import parse_args, to_row

pytestmark = pytest.mark.unit


def test_to_row_is_keyed_by_event_id_with_event_timestamp():
    value = json.dumps({"event_id": "t-000001", "seq": 1, "device": "dev-1", "event_time": 1234}).encode()
    key, cells, ts = to_row(value, partition=2, offset=7, timestamp_ms=999)
    assert key == b"t-000001"
    assert ts == 1234
    assert cells == {b"d:seq": b"1", b"d:device": b"dev-1", b"d:kafka": b"2:7"}


def test_args_required():
    with pytest.raises(SystemExit):
        parse_args(["--topic", "x"])
    args = parse_args(["--bootstrap", "b:1", "--topic", "t", "--tag", "x"])
    assert args.hbase_port == 9090
