"""Shared fixtures. Tests under unit/ need no services; integration/ and e2e/ use the real stack.

The ``stack`` session fixture starts the local stack when it is not already up and, at the end,
stops only what it started itself (a developer's running stack is left alone).
"""

from __future__ import annotations

import logging
import os
import tempfile
import uuid

import pytest

# py4j logs "Closing down clientserver connection" from __del__ at interpreter exit, after
# pytest closed its streams: a traceback printed below the result line. Keep it quiet.
logging.getLogger("py4j").setLevel(logging.WARNING)
# The session Spark of the unit tests is never stopped (that races py4j's own shutdown); at exit
# py4j then logs through a closed stream, and logging would print that error below the result.
logging.raiseExceptions = False

os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# Execution-API tokens of 60 s: the micro-batch e2e test keeps tasks running several lifetimes,
# which proves Airflow re-issues tokens to long tasks (the production setting is 7 days).
os.environ.setdefault("TORMENTA_TASK_TOKEN_SECONDS", "60")
# Unit tests that import Airflow get a throw-away home, never the stack's (or ~/airflow).
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="tormenta-airflow-tests-"))


TIERS = ("unit", "integration", "e2e")


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects: a file without its pytestmark still runs
def pytest_collection_modifyitems(config, items):
    """Every test is marked with its tier from its folder (tests/unit -> unit, ...), so that
    ``make test``'s ``-m "unit or integration or e2e"`` can never silently leave a file out."""
    from pathlib import Path

    root = Path(__file__).resolve().parent
    for item in items:
        parts = Path(str(item.fspath)).resolve().relative_to(root).parts
        if parts and parts[0] in TIERS and item.get_closest_marker(parts[0]) is None:
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture(scope="session")
def stack():
    from tormenta import stack as stack_mod
    from tormenta.settings import load

    _restart_airflow_if_token_lifetime_differs(stack_mod, load())
    started = stack_mod.up()
    yield load()
    ours = [name for name, new in started.items() if new]
    if ours and os.environ.get("TORMENTA_KEEP_STACK") != "1":
        stack_mod.down(ours)


def _restart_airflow_if_token_lifetime_differs(stack_mod, s) -> None:
    """A running Airflow started with another token lifetime is restarted with the tests' one."""
    import configparser

    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(s.airflow_home / "airflow.cfg")
    running = cfg.get("execution_api", "jwt_expiration_time", fallback=None)
    if running is not None and running != os.environ["TORMENTA_TASK_TOKEN_SECONDS"]:
        stopped = stack_mod.down(stack_mod.AIRFLOW_PROCESSES)
        if stopped:
            print(f"restarting Airflow with {os.environ['TORMENTA_TASK_TOKEN_SECONDS']} s task tokens (was {running})")


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topics, tables and run tags of one test."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def hbase(stack):
    from tormenta.hbase import HBaseEndpoint

    conn = HBaseEndpoint(stack.bind_host, stack.thrift_port).connect()
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def spark():
    """A local Spark session with the project's jars (the Kafka connector and the JVM sink): no
    services, so the unit tests of the SQL contract and rules can use it."""
    from spark_jobs import jvm_sink
    from spark_jobs.session import get_session

    session = get_session("tormenta-tests", master="local[2]")
    jvm_sink.register(session)
    return session  # not stopped: the JVM ends with the test process (stopping it races py4j's shutdown)
