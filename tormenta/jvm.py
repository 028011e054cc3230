"""JVM components resolved from Maven Central by Maven, and the project's own JVM sink built by it.

Each component has a pom under ``jvm/<name>/pom.xml``. ``ensure_jars`` runs
``mvn dependency:copy-dependencies`` once per pom into ``<jars_dir>/<name>`` and leaves a stamp
holding the pom's hash (and, for a module with Java sources, theirs), so later calls cost nothing
until the pom or a source changes. A module with sources (``jvm/sink``) is also built there with
``mvn package``: its jar is ours, never downloaded prebuilt. Nothing is downloaded from any URL
other than through Maven.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tormenta.settings import REPO_ROOT, load

log = logging.getLogger(__name__)

POM_ROOT = REPO_ROOT / "jvm"
MIN_JAVA = 17


@dataclass(frozen=True)
class Component:
    name: str
    # Only these artifacts are copied (None: the whole runtime tree).
    include_artifact_ids: tuple[str, ...] | None = None
    # Resolved when first needed (benchmark tools), not by `tormenta jars`.
    on_demand: bool = False
    # Only dependencies of these Maven groups are copied (None: every group).
    include_group_ids: tuple[str, ...] | None = None
    exclude_artifact_ids: tuple[str, ...] = ()
    # Java sources under jvm/<name>/src: `mvn package` builds the module's own jar as well.
    builds_jar: bool = False


COMPONENTS: dict[str, Component] = {
    "kafka": Component("kafka"),
    "hbase": Component("hbase"),
    # Four jars only, so kafka-clients' copies of lz4/snappy/slf4j never shadow pyspark's.
    "spark": Component(
        "spark",
        (
            "spark-sql-kafka-0-10_2.13",
            "spark-token-provider-kafka-0-10_2.13",
            "kafka-clients",
            "commons-pool2",
        ),
    ),
    # Our JVM sink (BufferedMutator writer, batched lookups, strict JSON, HFile bulk load) and the
    # HBase client it needs. Spark 4.2 already ships Hadoop (client-api/runtime 3.5), ZooKeeper,
    # Jackson, logging and the commons: only HBase's own jars are copied next to ours.
    "sink": Component(
        "sink",
        include_group_ids=(
            "org.apache.hbase", "org.apache.hbase.thirdparty", "io.opentelemetry", "org.jruby.jcodings",
            "org.jruby.joni", "com.google.protobuf", "org.apache.yetus",
        ),
        exclude_artifact_ids=("hbase-http", "hbase-shaded-jetty", "hbase-shaded-jersey", "hbase-replication",
                              "hbase-procedure"),
        builds_jar=True,
    ),  # fmt: skip
    # HBase's PerformanceEvaluation for bench/ (B3).
    "bench": Component("bench", ("hbase-mapreduce",), on_demand=True),
}

# What spark-submit hands the jobs with `--jars` / `spark.jars` (a child class loader).
SPARK_COMPONENTS = ("spark",)
# What goes on the driver's and executors' own class path instead: HBase's hadoop2-compat jar puts
# classes into Hadoop's package org.apache.hadoop.metrics2.lib, which must be loaded by the same
# loader as Spark's Hadoop jars (from a child loader, package-private access fails when HFiles
# are written: IllegalAccessError on MetricsInfoImpl).
CLASSPATH_COMPONENTS = ("sink",)


class PrerequisiteError(RuntimeError):
    """A tool the platform needs (java, mvn) is missing or too old."""


def java_major_version(java: str = "java") -> int:
    """Major version of ``java`` on PATH; raises PrerequisiteError when missing."""
    exe = shutil.which(java)
    if exe is None:
        raise PrerequisiteError(
            "java was not found on PATH. Install a JDK 17 or newer "
            "(Debian/Ubuntu: apt-get install openjdk-17-jdk-headless)."
        )
    out = subprocess.run([exe, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        raise PrerequisiteError(f"could not read the Java version from: {out.strip()!r}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_392" style
        major = int(match.group(2))
    return major


def check_java() -> None:
    major = java_major_version()
    if major < MIN_JAVA:
        raise PrerequisiteError(
            f"Java {major} found, Tormenta needs Java {MIN_JAVA}+ "
            "(Debian/Ubuntu: apt-get install openjdk-17-jdk-headless)."
        )


def check_maven() -> str:
    exe = shutil.which("mvn")
    if exe is None:
        raise PrerequisiteError(
            "mvn (Apache Maven) was not found on PATH; it resolves Kafka, HBase and the Spark "
            "Kafka connector from Maven Central. Install it (Debian/Ubuntu: apt-get install maven)."
        )
    return exe


def pom_path(name: str) -> Path:
    return POM_ROOT / name / "pom.xml"


def jars_dir(name: str) -> Path:
    return load().jars_dir / name


def source_files(name: str) -> list[Path]:
    """Java sources of a module that builds its own jar (sorted; empty for pure dependency poms)."""
    return sorted((POM_ROOT / name / "src").rglob("*.java"))


def _stamp_value(component: Component) -> str:
    digest = hashlib.sha256(pom_path(component.name).read_bytes())
    digest.update(repr((component.include_artifact_ids, component.include_group_ids,
                        component.exclude_artifact_ids)).encode())  # fmt: skip
    for src in source_files(component.name) if component.builds_jar else []:
        digest.update(str(src.relative_to(POM_ROOT)).encode())
        digest.update(src.read_bytes())
    return digest.hexdigest()


def is_resolved(name: str) -> bool:
    stamp = jars_dir(name) / ".stamp"
    return stamp.exists() and stamp.read_text().strip() == _stamp_value(COMPONENTS[name])


def _run_maven(cmd: list[str], logfile: Path, label: str) -> None:
    """Run Maven, keep its output in ``logfile`` and print a progress line every 10 s."""
    with logfile.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=POM_ROOT)
        done = threading.Event()

        def heartbeat() -> None:
            start = time.monotonic()
            while not done.wait(10):
                downloaded = logfile.read_text(errors="replace").count("Downloaded from")
                print(
                    f"  ... maven {label}: {downloaded} files downloaded, "
                    f"{time.monotonic() - start:.0f}s",
                    file=sys.stderr,
                    flush=True,
                )

        thread = threading.Thread(target=heartbeat, daemon=True)
        thread.start()
        rc = proc.wait()
        done.set()
    if rc != 0:
        tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-25:])
        raise RuntimeError(f"Maven failed for {label} (exit {rc}); full log: {logfile}\n{tail}")


def ensure_jars(name: str, *, force: bool = False) -> Path:
    """Resolve component ``name`` into its jars folder (idempotent); return the folder.

    Retry: safe; a failed or interrupted run leaves the previous folder untouched because the
    copy goes to a temporary folder that replaces the old one only when Maven succeeded.
    """
    component = COMPONENTS[name]
    target = jars_dir(name)
    if not force and is_resolved(name):
        return target
    mvn = check_maven()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    cmd = [
        mvn,
        "-B",
        "-ntp",
        "-f",
        str(pom_path(name)),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    if component.include_artifact_ids:
        cmd.append("-DincludeArtifactIds=" + ",".join(component.include_artifact_ids))
    if component.include_group_ids:
        cmd.append("-DincludeGroupIds=" + ",".join(component.include_group_ids))
    if component.exclude_artifact_ids:
        cmd.append("-DexcludeArtifactIds=" + ",".join(component.exclude_artifact_ids))
    print(f"[jars] resolving {name} from Maven Central ({pom_path(name).relative_to(REPO_ROOT)})",
          file=sys.stderr, flush=True)
    started = time.monotonic()
    _run_maven(cmd, target.parent / f"maven-{name}.log", name)
    if component.builds_jar:
        build = target.parent / f".{name}.build"
        shutil.rmtree(build, ignore_errors=True)
        print(f"[jars] building {name} (mvn package: {len(source_files(name))} Java sources)",
              file=sys.stderr, flush=True)
        _run_maven([mvn, "-B", "-ntp", "-f", str(pom_path(name)), "package", "-DskipTests",
                    f"-Dtormenta.build.dir={build}"], target.parent / f"maven-{name}-package.log",
                   f"{name} package")  # fmt: skip
        built = sorted(build.glob("*.jar"))
        if len(built) != 1:
            raise RuntimeError(f"mvn package of {name} made {len(built)} jars in {build}, expected 1")
        shutil.copy2(built[0], staging / built[0].name)
        shutil.rmtree(build, ignore_errors=True)
    (staging / ".stamp").write_text(_stamp_value(component) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    count = len(list(target.glob("*.jar")))
    print(f"[jars] {name}: {count} jars in {time.monotonic() - started:.0f}s -> {target}",
          file=sys.stderr, flush=True)
    return target


def ensure_all(force: bool = False) -> None:
    check_java()
    for name, component in COMPONENTS.items():
        if not component.on_demand:
            ensure_jars(name, force=force)


def jar_paths(name: str) -> list[Path]:
    """Sorted jar files of a resolved component (raises when it was never resolved)."""
    folder = jars_dir(name)
    jars = sorted(folder.glob("*.jar"))
    if not jars:
        raise FileNotFoundError(f"no jars in {folder}; run `tormenta jars` (or `make jars`) first")
    return jars


def spark_jar_paths() -> list[Path]:
    """The jars the Spark jobs get with ``--jars``: the Kafka connector."""
    return [p for name in SPARK_COMPONENTS for p in jar_paths(name)]


def spark_class_path() -> str:
    """The driver's and executors' extra class path: our JVM sink and the HBase client."""
    import os

    return os.pathsep.join(str(p) for name in CLASSPATH_COMPONENTS for p in jar_paths(name))


def spark_classpath_conf() -> dict[str, str]:
    """``spark.driver.extraClassPath`` / ``spark.executor.extraClassPath`` for the sink (the
    executors of a cluster need the same jars at the same path, as a deployment provides)."""
    cp = spark_class_path()
    return {"spark.driver.extraClassPath": cp, "spark.executor.extraClassPath": cp}


def spark_connector_version() -> str:
    """Version of the spark-sql-kafka connector jar in use, e.g. ``4.2.0``."""
    for jar in jar_paths("spark"):
        match = re.fullmatch(r"spark-sql-kafka-0-10_2\.13-(.+)\.jar", jar.name)
        if match:
            return match.group(1)
    raise FileNotFoundError("spark-sql-kafka-0-10 jar missing from " + str(jars_dir("spark")))
