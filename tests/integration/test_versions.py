"""The Python Spark and the JVM connector are one Spark version (pyspark-client must not mix in)."""

import importlib.metadata as md
import re

import pytest

from tormenta import jvm

pytestmark = pytest.mark.integration


def test_pyspark_matches_connector_jars(stack):
    import pyspark

    connector = jvm.spark_connector_version()
    assert pyspark.__version__ == connector
    assert md.version("pyspark") == connector
    assert md.version("pyspark-client") == connector


def test_pyspark_jvm_is_the_same_version(stack):
    """The Spark core jar shipped inside pyspark is the connector's version too."""
    from pathlib import Path

    import pyspark

    jars = [p.name for p in (Path(pyspark.__file__).parent / "jars").glob("spark-core_2.13-*.jar")]
    assert len(jars) == 1
    assert re.fullmatch(r"spark-core_2\.13-(.+)\.jar", jars[0]).group(1) == jvm.spark_connector_version()
