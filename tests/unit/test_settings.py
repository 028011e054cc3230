import pytest

from tormenta import settings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _fresh():
    settings.load.cache_clear()
    yield
    settings.load.cache_clear()


def test_defaults_bind_loopback_only(monkeypatch):
    for var in ("TORMENTA_BIND_HOST", "TORMENTA_KAFKA_PORT", "TORMENTA_AIRFLOW_PORT"):
        monkeypatch.delenv(var, raising=False)
    s = settings.load()
    assert s.bind_host == "127.0.0.1"
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.airflow_url == "http://127.0.0.1:8080"


def test_env_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("TORMENTA_HOME", str(tmp_path))
    monkeypatch.setenv("TORMENTA_KAFKA_PORT", "19092")
    s = settings.load()
    assert s.home == tmp_path.resolve()
    assert s.kafka_bootstrap.endswith(":19092")
    assert s.logs_dir == tmp_path.resolve() / "logs"


@pytest.mark.parametrize("value", ["abc", "0", "70000"])
def test_bad_port_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv("TORMENTA_KAFKA_PORT", value)
    with pytest.raises(ValueError, match="TORMENTA_KAFKA_PORT"):
        settings.load()
