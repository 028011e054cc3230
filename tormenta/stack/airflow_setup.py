"""Airflow 3 for the local stack: generated config, secrets kept once, connections, processes.

Secrets (Fernet key, JWT secret, API secret key, user passwords) are generated on the first
``up`` into ``<home>/secrets`` with mode 0600 and reused afterwards, so restarts keep sessions,
encrypted connection fields and logins valid.
"""

from __future__ import annotations

import configparser
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

from tormenta.settings import REPO_ROOT, Settings
from tormenta.stack.services import python_env

# Execution-API token lifetime of a task. Airflow 3.3 re-issues a task's token on its heartbeats
# before it expires (JWTReissueMiddleware), so a micro-batch task can run for days; a long
# lifetime is a second safety net. The e2e suite runs with 60 s (TORMENTA_TASK_TOKEN_SECONDS)
# and keeps tasks running several lifetimes to prove the re-issue works.
TASK_TOKEN_SECONDS = 7 * 24 * 3600


def task_token_seconds() -> int:
    raw = os.environ.get("TORMENTA_TASK_TOKEN_SECONDS", "").strip()
    value = int(raw) if raw else TASK_TOKEN_SECONDS
    if value < 60:
        raise ValueError("TORMENTA_TASK_TOKEN_SECONDS must be >= 60")
    return value
# username -> Simple auth manager role. "alerts" is the tasks' own user: it writes a failed
# task's reason into its run's note (tormenta/alerts.py); a viewer may not edit runs.
USERS = {"admin": "admin", "viewer": "viewer", "alerts": "user"}

# The local stack's metadata database is one SQLite file written by four Airflow processes and
# every task. Airflow opens it in WAL mode (readers never wait), but writers take turns, and
# sqlite3's default wait for a turn is 5 s: on 2 busy cores a scheduler loop can hold the write
# lock longer, and the API answered a trigger with "500 Database error" (CI, stop 23). A writer
# now waits up to SQLITE_BUSY_SECONDS. Airflow imports these by name
# ([database] sql_alchemy_connect_args / _async); two dicts, since Airflow adds to the sync one.
SQLITE_BUSY_SECONDS = 60
SQLITE_CONNECT_ARGS = {"timeout": SQLITE_BUSY_SECONDS}
SQLITE_CONNECT_ARGS_ASYNC = {"timeout": SQLITE_BUSY_SECONDS}


def write_private(path: Path, text: str) -> None:
    """Create or replace ``path`` readable by its owner only (never world-readable, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def new_fernet_key() -> str:
    return Fernet.generate_key().decode()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def new_jwt_secret() -> str:
    return secrets.token_urlsafe(48)


def new_password() -> str:
    return secrets.token_urlsafe(18)


def _secret(s: Settings, name: str, factory) -> str:
    path = s.secrets_dir / name
    if path.exists():
        return path.read_text().strip()
    value = factory()
    write_private(path, value + "\n")
    return value


def passwords_file(s: Settings) -> Path:
    return s.secrets_dir / "airflow-passwords.json"


def ensure_passwords(s: Settings) -> tuple[dict[str, str], bool]:
    """Passwords of the UI users; returns (passwords, created_now)."""
    path = passwords_file(s)
    current: dict[str, str] = {}
    if path.exists():
        current = json.loads(path.read_text() or "{}")
    missing = [u for u in USERS if u not in current]
    for user in missing:
        current[user] = new_password()
    if missing:
        write_private(path, json.dumps(current, indent=2) + "\n")
    return current, bool(missing)


def airflow_settings(*, base_url: str, host: str, port: int, logs: Path, fernet_key: str, api_secret: str,
                     jwt_secret: str, database: str, database_async: str | None = None,
                     auth_manager: str | None = None, passwords_path: Path | None = None) -> dict[str, dict[str, str]]:  # fmt: skip
    """Airflow's settings by section, for the local stack (airflow.cfg, Simple auth manager, SQLite)
    and for the cluster (environment variables, FAB auth manager, PostgreSQL) alike."""
    core = {
        "dags_folder": str(REPO_ROOT / "dags"),
        "plugins_folder": str(REPO_ROOT / "plugins"),
        "executor": "LocalExecutor",
        "load_examples": "False",
        "fernet_key": fernet_key,
        "execution_api_server_url": f"{base_url}/execution/",
        "dags_are_paused_at_creation": "True",
        # 2 cores: a handful of concurrent tasks; the micro-batch DAG raises its own limits.
        "parallelism": "16",
    }
    if auth_manager is None:  # the Simple auth manager: development only, the local stack's default
        core.update({
            "auth_manager": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "simple_auth_manager_users": ",".join(f"{u}:{r}" for u, r in USERS.items()),
            "simple_auth_manager_all_admins": "False",
            "simple_auth_manager_passwords_file": str(passwords_path),
        })  # fmt: skip
    else:
        core["auth_manager"] = auth_manager
    database_section = {"sql_alchemy_conn": database}
    if database.startswith("sqlite"):
        database_section["sql_alchemy_connect_args"] = f"{__name__}.SQLITE_CONNECT_ARGS"
        database_section["sql_alchemy_connect_args_async"] = f"{__name__}.SQLITE_CONNECT_ARGS_ASYNC"
    if database_async:
        database_section["sql_alchemy_conn_async"] = database_async
    return {
        "core": core,
        "database": database_section,
        "api": {"host": host, "port": str(port), "base_url": base_url, "workers": "1", "expose_config": "False",
                "secret_key": api_secret},
        "api_auth": {"jwt_secret": jwt_secret, "jwt_audience": "tormenta"},
        "execution_api": {"jwt_expiration_time": str(task_token_seconds()), "jwt_audience": "tormenta-execution"},
        "logging": {"base_log_folder": str(logs)},
        # The API health endpoint reports the scheduler's heartbeat; its own health server is not needed.
        "scheduler": {"enable_health_check": "False", "scheduler_health_check_server_host": host},
        "dag_processor": {"refresh_interval": "30"},
    }  # fmt: skip


def render_config(s: Settings) -> Path:
    """Write ``<airflow_home>/airflow.cfg`` (regenerated on each ``up``; secrets come from files)."""
    home = s.airflow_home
    home.mkdir(parents=True, exist_ok=True)
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_dict(airflow_settings(
        base_url=s.airflow_url, host=s.bind_host, port=s.airflow_port, logs=s.logs_dir / "airflow",
        fernet_key=_secret(s, "fernet.key", new_fernet_key),
        api_secret=_secret(s, "api-secret.key", new_token),
        jwt_secret=_secret(s, "jwt.secret", new_jwt_secret),
        database=f"sqlite:///{home / 'airflow.db'}", passwords_path=passwords_file(s),
    ))  # fmt: skip
    path = home / "airflow.cfg"
    with path.open("w") as fh:
        fh.write("# Generated by `tormenta stack up` (tormenta/stack/airflow_setup.py); edits are lost.\n")
        cfg.write(fh)
    os.chmod(path, 0o600)  # holds the Fernet key and JWT secret
    return path


def airflow_env(s: Settings) -> dict[str, str]:
    """Environment for every Airflow process (and for the `airflow` CLI via `tormenta airflow`)."""
    return python_env(
        {
            "AIRFLOW_HOME": str(s.airflow_home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "TORMENTA_HOME": str(s.home),
            "TORMENTA_JARS_DIR": str(s.jars_dir),
            "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "NO_PROXY": "127.0.0.1,localhost",
        }
    )


def airflow_cli(s: Settings, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).parent / "airflow")
    return subprocess.run(
        [exe, *args], env=airflow_env(s), capture_output=True, text=True, check=check
    )


def connections(s: Settings) -> dict[str, dict]:
    """Connections the local stack creates. Pointing one at a cluster needs no code change."""
    passwords = ensure_passwords(s)[0]
    return connections_for(
        spark_master="local[*]", spark_desc="Spark in local mode inside the job process (Tormenta local stack).",
        kafka_bootstrap=s.kafka_bootstrap, kafka_desc="Tormenta local Kafka (KRaft, one broker).",
        airflow_url=s.airflow_url, passwords=passwords, thrift_host=s.bind_host, thrift_port=s.thrift_port,
        zookeeper=f"{s.bind_host}:{s.zookeeper_port}",
    )  # fmt: skip


def connections_for(*, spark_master: str, spark_desc: str, kafka_bootstrap: str, kafka_desc: str, airflow_url: str,
                    passwords: dict[str, str], thrift_host: str, thrift_port: int, zookeeper: str) -> dict[str, dict]:  # fmt: skip
    """The platform's Airflow connections, for the local stack and the cluster alike."""
    return {
        "spark_default": {"conn_type": "spark", "host": spark_master, "description": spark_desc},
        "kafka_default": {
            "conn_type": "kafka",
            "description": kafka_desc,
            "extra": json.dumps({"bootstrap.servers": kafka_bootstrap}),
        },
        "kafka_batch_files": {
            "conn_type": "kafka",
            "description": "Kafka, as the batch DAG's file-announcement watcher reads it (topic tormenta.batch.files): "
                           "its consumer group remembers the announcements already turned into runs.",
            "extra": json.dumps({"bootstrap.servers": kafka_bootstrap, "group.id": "tormenta-batch-files",
                                 "auto.offset.reset": "earliest", "enable.auto.commit": False}),
        },
        "airflow_api": {
            "conn_type": "http",
            "host": airflow_url,
            "login": "viewer",
            "password": passwords["viewer"],
            "description": "Airflow's own REST API, read-only (viewer): the micro-batch supervisor reads the "
                           "conf of a queued run there before it hands over to it.",
        },
        "airflow_alerts": {
            "conn_type": "http",
            "host": airflow_url,
            "login": "alerts",
            "password": passwords["alerts"],
            "description": "Airflow's own REST API as the 'alerts' user (role user): a task that fails for good "
                           "writes its reason into its run's note (tormenta/alerts.py).",
        },
        "hbase_default": {
            "conn_type": "generic",
            "host": thrift_host,
            "port": thrift_port,
            "description": "HBase: Thrift server (happybase: buffered transport, binary protocol) and the "
                           "ZooKeeper quorum the jobs' native writer finds the region servers through.",
            "extra": json.dumps({"transport": "buffered", "protocol": "binary", "timeout_ms": 30000,
                                 "zookeeper_quorum": zookeeper}),
        },
    }


def init_metadata(s: Settings) -> None:
    """Migrate the metadata DB and add missing connections (existing ones are left as edited)."""
    result = airflow_cli(s, "db", "migrate", check=False)
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    path = s.secrets_dir / "connections.json"
    write_private(path, json.dumps(connections(s), indent=2))
    result = airflow_cli(s, "connections", "import", str(path), check=False)
    if result.returncode != 0:
        raise RuntimeError(f"airflow connections import failed:\n{result.stdout}\n{result.stderr}")
    ensure_pools(s)


def pools(cores: int | None = None) -> dict[str, dict]:
    """Pools sized from this machine's cores (or a cluster's), re-sized on every ``up`` (see tormenta/capacity.py)."""
    from tormenta import capacity

    cores = cores or capacity.cores_available()
    slots = capacity.spark_pool_slots(cores)
    return {
        capacity.SPARK_POOL: {
            "slots": slots,
            "description": (
                f"Spark cores: {cores} core(s) minus a {capacity.RESERVE_FRACTION:.0%} reserve "
                f"({capacity.reserved_cores(cores)} core(s)) for the system. The streaming job holds "
                f"{capacity.stream_cores()} slot(s) while it runs; batch windows queue for the rest."
            ),
            "include_deferred": False,
        }
    }


def ensure_pools(s: Settings) -> None:
    from tormenta import capacity

    path = s.secrets_dir / "pools.json"
    write_private(path, json.dumps(pools(), indent=2))
    result = airflow_cli(s, "pools", "import", str(path), check=False)
    if result.returncode != 0:
        raise RuntimeError(f"airflow pools import failed:\n{result.stdout}\n{result.stderr}")
    for warning in capacity.pool_warnings(capacity.cores_available()):
        print(f"[stack] WARNING: {warning}", file=sys.stderr, flush=True)


def process_commands(s: Settings) -> dict[str, list[str]]:
    exe = str(Path(sys.executable).parent / "airflow")
    return {
        "airflow-api-server": [exe, "api-server", "--host", s.bind_host, "--port", str(s.airflow_port)],
        # serve-logs would listen on every interface; the API server reads the log files directly.
        "airflow-scheduler": [exe, "scheduler", "--skip-serve-logs"],
        "airflow-dag-processor": [exe, "dag-processor"],
        # Its log server would listen on every interface too (port 8794).
        "airflow-triggerer": [exe, "triggerer", "--skip-serve-logs"],
    }


def health(s: Settings, timeout: float = 3.0) -> dict | None:
    """Airflow's /api/v2/monitor/health document, or None when the API server does not answer."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{s.airflow_url}/api/v2/monitor/health", timeout=timeout) as resp:
            return json.loads(resp.read())
    except Exception:  # noqa: BLE001 - unreachable or starting
        return None


def healthy(s: Settings) -> bool:
    doc = health(s)
    if not doc:
        return False
    parts = ("metadatabase", "scheduler", "dag_processor", "triggerer")
    return all((doc.get(p) or {}).get("status") == "healthy" for p in parts)
