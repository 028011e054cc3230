import configparser
import stat

import pytest

from tormenta.stack import airflow_setup

pytestmark = pytest.mark.unit


def _cfg(s):
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(airflow_setup.render_config(s))
    return cfg


def test_config_is_safe_by_default(s, monkeypatch):
    monkeypatch.delenv("TORMENTA_TASK_TOKEN_SECONDS", raising=False)  # the tests' 60 s, not the default
    cfg = _cfg(s)
    assert cfg["core"]["load_examples"] == "False"
    assert cfg["core"]["simple_auth_manager_all_admins"] == "False"
    assert cfg["core"]["executor"] == "LocalExecutor"
    assert cfg["api"]["host"] == "127.0.0.1"
    assert cfg["api"]["expose_config"] == "False"
    assert len(cfg["core"]["fernet_key"]) == 44
    assert len(cfg["api_auth"]["jwt_secret"]) >= 48
    # Long-running micro-batch tasks outlive Airflow's default 10-minute task token.
    assert int(cfg["execution_api"]["jwt_expiration_time"]) >= 24 * 3600


def test_secrets_are_generated_once_and_private(s):
    first = _cfg(s)
    second = _cfg(s)
    assert first["core"]["fernet_key"] == second["core"]["fernet_key"]
    assert first["api_auth"]["jwt_secret"] == second["api_auth"]["jwt_secret"]
    for path in [*s.secrets_dir.iterdir(), s.airflow_home / "airflow.cfg"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(s.secrets_dir.stat().st_mode) == 0o700


def test_passwords_created_once(s):
    pw1, created1 = airflow_setup.ensure_passwords(s)
    pw2, created2 = airflow_setup.ensure_passwords(s)
    assert created1 and not created2
    assert pw1 == pw2 and set(pw1) == {"admin", "viewer", "alerts"}
    assert all(len(p) >= 20 for p in pw1.values())


def test_connections_point_at_the_local_stack(s):
    conns = airflow_setup.connections(s)
    assert conns["spark_default"] == {**conns["spark_default"], "conn_type": "spark", "host": "local[*]"}
    assert "127.0.0.1:9092" in conns["kafka_default"]["extra"]
    assert conns["hbase_default"]["port"] == 9090


@pytest.mark.parametrize("process", ["airflow-scheduler", "airflow-triggerer"])
def test_no_airflow_process_serves_logs_on_all_interfaces(s, process):
    assert "--skip-serve-logs" in airflow_setup.process_commands(s)[process]


def test_task_token_lifetime_can_be_shortened_for_the_proof_but_not_below_a_minute(s, monkeypatch):
    from tormenta.stack import airflow_setup

    monkeypatch.setenv("TORMENTA_TASK_TOKEN_SECONDS", "60")
    assert _cfg(s)["execution_api"]["jwt_expiration_time"] == "60"
    monkeypatch.setenv("TORMENTA_TASK_TOKEN_SECONDS", "5")
    with pytest.raises(ValueError, match=">= 60"):
        airflow_setup.task_token_seconds()
