import pytest

from tormenta import settings

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("fresh_settings")]


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


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "myhost"])
def test_up_refuses_to_expose_the_unauthenticated_services(monkeypatch, tmp_path, host):
    from tormenta import stack

    monkeypatch.setenv("TORMENTA_HOME", str(tmp_path))
    monkeypatch.setenv("TORMENTA_BIND_HOST", host)
    with pytest.raises(stack.StackError, match=f"TORMENTA_BIND_HOST={host} would expose Kafka"):
        stack.up()
    assert not (tmp_path / "run").exists(), "nothing may start before the check"


def test_the_first_up_says_where_the_passwords_are_but_never_prints_them(s):
    from tormenta import stack
    from tormenta.stack import airflow_setup

    passwords, created = airflow_setup.ensure_passwords(s)
    assert created
    text = "\n".join(stack.users_created_message(s, sorted(passwords)))
    assert str(airflow_setup.passwords_file(s)) in text
    assert not any(pw in text for pw in passwords.values())
