import stat

import pytest

from tormenta import jvm

pytestmark = pytest.mark.unit


def _fake_java(tmp_path, version_line: str):
    exe = tmp_path / "java"
    exe.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return exe


@pytest.mark.parametrize(
    ("line", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_392"', 8),
    ],
)
def test_java_major_version(tmp_path, monkeypatch, line, major):
    _fake_java(tmp_path, line)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert jvm.java_major_version() == major


def test_old_java_is_refused_with_install_hint(tmp_path, monkeypatch):
    _fake_java(tmp_path, 'java version "1.8.0_392"')
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(jvm.PrerequisiteError, match="17"):
        jvm.check_java()


def test_missing_tools_say_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # empty folder: neither java nor mvn
    with pytest.raises(jvm.PrerequisiteError, match="apt-get install openjdk"):
        jvm.check_java()
    with pytest.raises(jvm.PrerequisiteError, match="apt-get install maven"):
        jvm.check_maven()


def test_every_component_has_a_pom():
    for name in jvm.COMPONENTS:
        assert jvm.pom_path(name).is_file(), name


def test_spark_connector_pins_the_pyspark_version():
    """The connector pom and requirements.txt must name the same Spark version."""
    import re

    pom = jvm.pom_path("spark").read_text()
    spark_version = re.search(r"<spark.version>([^<]+)</spark.version>", pom).group(1)
    reqs = (jvm.REPO_ROOT / "requirements.txt").read_text()
    assert f"pyspark=={spark_version}" in reqs
    assert f"pyspark-client=={spark_version}" in reqs
