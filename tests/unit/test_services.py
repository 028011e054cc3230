import pytest

from tormenta.stack.services import HBaseService, KafkaService, ThriftService, new_kafka_cluster_id, render

pytestmark = pytest.mark.unit


def test_kafka_config_listens_on_loopback_only(s, tmp_path):
    path = render("kafka-server.properties", tmp_path / "k.properties", host=s.bind_host,
                  kafka_port=9092, controller_port=9093, log_dirs=tmp_path / "d")
    props = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["auto.create.topics.enable"] == "false"
    assert props["unclean.leader.election.enable"] == "false"


def test_hbase_config(s):
    HBaseService().prepare(s)
    xml = (s.conf_dir / "hbase" / "hbase-site.xml").read_text()
    assert "<name>hbase.cluster.distributed</name><value>false</value>" in xml
    assert f"file://{s.data_dir / 'hbase' / 'root'}" in xml
    assert "<name>hbase.master.info.port</name><value>-1</value>" in xml


def test_thrift_binds_loopback_and_speaks_happybase_defaults(s):
    cmd = ThriftService().command(s)
    assert cmd[cmd.index("-b") + 1] == "127.0.0.1"
    assert "-threadpool" in cmd  # buffered transport + binary protocol = happybase defaults
    assert not {"-hsha", "-nonblocking", "-threadedselector", "-c", "-f"} & set(cmd)


def test_kafka_command_is_an_argument_list(s):
    cmd = KafkaService().command(s)
    assert cmd[-2] == "kafka.Kafka"
    assert all(isinstance(part, str) for part in cmd)


def test_cluster_id_shape():
    import base64

    for _ in range(200):
        cid = new_kafka_cluster_id()
        assert len(cid) == 22 and not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16
