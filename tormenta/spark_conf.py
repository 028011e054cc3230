"""Spark configuration every Tormenta job runs with (no Airflow or pyspark import here)."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

from tormenta.settings import REPO_ROOT, load

LOG4J2_FILE = REPO_ROOT / "spark_jobs" / "log4j2.properties"
# What the jobs import on the executors: shipped with --py-files when the master is not local.
CODE_PACKAGES = ("tormenta", "spark_jobs", "ingestors", "kinds")


def default_conf() -> dict[str, str]:
    """Loopback by default, no web UI (it would listen on every interface), small shuffles for few
    cores. ``TORMENTA_SPARK_DRIVER_HOST`` (where executors reach the driver) and
    ``TORMENTA_SPARK_CONF`` (``key=value;key=value``, last word) adapt it to a cluster."""
    s = load()
    conf = {
        "spark.driver.host": s.spark_driver_host,
        "spark.driver.bindAddress": os.environ.get("TORMENTA_SPARK_DRIVER_BIND_ADDRESS", "").strip()
        or s.spark_driver_host,
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{LOG4J2_FILE}",
        # In local mode the driver's heap is the executors' too. Spark's 1g default starves the
        # sorts of a batch window (spills, and GC pauses long enough to time out HBase client calls).
        "spark.driver.memory": os.environ.get("TORMENTA_SPARK_DRIVER_MEMORY", "3g"),
        # A micro-batch generates ~100 classes; with Spark's default cache of 100 compiled classes
        # every batch compiled them all again (~0.2 s of driver CPU per batch).
        "spark.sql.codegen.cache.maxEntries": "2000",
    }
    cores = os.environ.get("TORMENTA_SPARK_EXECUTOR_CORES", "").strip()
    if cores:
        conf["spark.executor.cores"] = str(int(cores))
    conf.update(extra_conf(os.environ.get("TORMENTA_SPARK_CONF", "")))
    return conf


def extra_conf(raw: str) -> dict[str, str]:
    """``spark.a=1;spark.b=x`` -> dict; anything else is a clear error, not a silent skip."""
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(";"))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip().startswith("spark."):
            raise ValueError(f"TORMENTA_SPARK_CONF: {item!r} is not spark.<key>=<value>")
        out[key.strip()] = value.strip()
    return out


def is_local(master: str) -> bool:
    return master.startswith("local")


def code_archive(target_dir: Path | None = None) -> Path:
    """A zip of the jobs' Python packages for ``--py-files``, named by its content hash (an
    unchanged tree reuses the file; executors never run another version's code than the driver)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for package in CODE_PACKAGES:
            for path in sorted((REPO_ROOT / package).rglob("*.py")):
                info = zipfile.ZipInfo(str(path.relative_to(REPO_ROOT)), date_time=(2020, 1, 1, 0, 0, 0))
                zf.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    data = buf.getvalue()
    folder = target_dir or load().run_dir / "code"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"tormenta-code-{hashlib.sha256(data).hexdigest()[:16]}.zip"
    if not out.exists():
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, out)
    return out


def spark_submit_command(job: str, job_args: list[str], master: str = "local[2]",
                         conf: dict[str, str] | None = None) -> list[str]:  # fmt: skip
    """``spark-submit`` argument list for ``spark_jobs/<job>.py`` outside Airflow (tests, bench, CLI).

    Inside Airflow the same defaults come through ``SparkJobOperator``.
    """
    import sys

    from tormenta import jvm

    cmd = [str(Path(sys.executable).parent / "spark-submit"), "--master", master]
    for key, value in {**default_conf(), **jvm.spark_classpath_conf(), **(conf or {})}.items():
        cmd += ["--conf", f"{key}={value}"]
    cmd += ["--jars", ",".join(str(p) for p in jvm.spark_jar_paths())]
    if not is_local(master):
        cmd += ["--py-files", str(code_archive())]
    cmd += [str(LOG4J2_FILE.parent / f"{job}.py"), *job_args]
    return cmd
