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

os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# Unit tests that import Airflow get a throw-away home, never the stack's (or ~/airflow).
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="tormenta-airflow-tests-"))


@pytest.fixture(scope="session")
def stack():
    from tormenta import stack as stack_mod
    from tormenta.settings import load

    started = stack_mod.up()
    yield load()
    ours = [name for name, new in started.items() if new]
    if ours and os.environ.get("TORMENTA_KEEP_STACK") != "1":
        stack_mod.down(ours)


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
