"""The JVM services of the local stack: how to configure, start and probe each one.

The commands reproduce what the upstream ``bin/`` scripts would run (main classes, JVM flags,
config on the classpath), since only Maven artifacts are available, not release tarballs.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from string import Template

from tormenta import jvm
from tormenta.settings import Settings

TEMPLATES = Path(__file__).parent / "templates"

# From HBase's bin/hbase (add_jdk11_jvm_flags): netty and reflection need these on JDK 11+.
HBASE_JDK17_FLAGS = [
    "-Dorg.apache.hbase.thirdparty.io.netty.tryReflectionSetAccessible=true",
    "--add-modules", "jdk.unsupported",
    "--add-opens", "java.base/java.io=ALL-UNNAMED",
    "--add-opens", "java.base/java.nio=ALL-UNNAMED",
    "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens", "java.base/java.util=ALL-UNNAMED",
    "--add-opens", "java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports", "java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    "--add-exports", "java.base/sun.net.dns=ALL-UNNAMED",
    "--add-exports", "java.base/sun.net.util=ALL-UNNAMED",
]  # fmt: skip

# From Kafka's bin/kafka-run-class.sh (KAFKA_JVM_PERFORMANCE_OPTS).
KAFKA_PERF_FLAGS = [
    "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent", "-XX:MaxInlineLevel=15", "-Djava.awt.headless=true",
]  # fmt: skip


def render(template: str, target: Path, **values: object) -> Path:
    """Write ``templates/<template>`` with ``$name`` placeholders filled to ``target``."""
    text = Template((TEMPLATES / template).read_text()).substitute(
        {k: str(v) for k, v in values.items()}
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    exe = shutil.which("java")
    if not exe:
        raise jvm.PrerequisiteError("java not found; install a JDK 17+")
    return exe


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def new_kafka_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, base64url without padding, not starting with '-'."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


@dataclass(frozen=True)
class JvmService:
    """One long-lived JVM process of the stack."""

    name: str
    description: str

    def ports(self, s: Settings) -> list[int]:
        raise NotImplementedError

    def prepare(self, s: Settings) -> None:
        """Write config and initialise storage (idempotent)."""

    def command(self, s: Settings) -> list[str]:
        raise NotImplementedError

    def env(self, s: Settings) -> dict[str, str]:
        return dict(os.environ)

    def ready(self, s: Settings) -> bool:
        return all(port_open(s.bind_host, p) for p in self.ports(s))


class KafkaService(JvmService):
    def __init__(self) -> None:
        super().__init__("kafka", "Apache Kafka broker + KRaft controller")

    def ports(self, s: Settings) -> list[int]:
        return [s.kafka_port, s.kafka_controller_port]

    def conf_path(self, s: Settings) -> Path:
        return s.conf_dir / "kafka" / "server.properties"

    def log_dirs(self, s: Settings) -> Path:
        return s.data_dir / "kafka"

    def prepare(self, s: Settings) -> None:
        conf = render(
            "kafka-server.properties",
            self.conf_path(s),
            host=s.bind_host,
            kafka_port=s.kafka_port,
            controller_port=s.kafka_controller_port,
            log_dirs=self.log_dirs(s),
        )
        render("kafka-log4j2.yaml", s.conf_dir / "kafka" / "log4j2.yaml")
        render("kafka-tools-log4j2.yaml", s.conf_dir / "kafka" / "tools-log4j2.yaml")
        if (self.log_dirs(s) / "meta.properties").exists():
            return  # formatted once; formatting again would refuse (or wipe) the cluster id
        cmd = [
            java(), "-Xmx256M",
            f"-Dlog4j2.configurationFile={s.conf_dir / 'kafka' / 'tools-log4j2.yaml'}",
            "-cp", str(jvm.jars_dir("kafka") / "*"),
            "kafka.tools.StorageTool", "format", "--standalone",
            "-t", new_kafka_cluster_id(), "-c", str(conf),
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"kafka storage format failed:\n{result.stdout}\n{result.stderr}")

    def command(self, s: Settings) -> list[str]:
        return [
            java(), f"-Xmx{s.kafka_heap}", f"-Xms{s.kafka_heap}", *KAFKA_PERF_FLAGS,
            f"-Dkafka.logs.dir={s.logs_dir}",
            f"-Dlog4j2.configurationFile={s.conf_dir / 'kafka' / 'log4j2.yaml'}",
            "-cp", str(jvm.jars_dir("kafka") / "*"),
            "kafka.Kafka", str(self.conf_path(s)),
        ]  # fmt: skip

    def ready(self, s: Settings) -> bool:
        if not super().ready(s):
            return False
        from confluent_kafka.admin import AdminClient

        try:
            admin = AdminClient({"bootstrap.servers": s.kafka_bootstrap, "socket.timeout.ms": 2000})
            admin.list_topics(timeout=3)
            return True
        except Exception:  # noqa: BLE001 - any failure means "not ready yet"
            return False


def hbase_classpath(s: Settings) -> str:
    # Config folder first, as bin/hbase does, so hbase-site.xml and log4j2.properties win.
    return f"{s.conf_dir / 'hbase'}{os.pathsep}{jvm.jars_dir('hbase') / '*'}"


def hbase_jvm_flags(s: Settings, heap: str, proc: str) -> list[str]:
    return [
        f"-Xmx{heap}", "-XX:+UseG1GC", '-XX:OnOutOfMemoryError=kill -9 %p', f"-Dproc_{proc}",
        *HBASE_JDK17_FLAGS,
        "-Djava.util.logging.config.class=org.apache.hadoop.hbase.logging.JulToSlf4jInitializer",
        f"-Dhbase.log.dir={s.logs_dir}", f"-Dhbase.home.dir={s.data_dir / 'hbase'}",
        "-Dhbase.root.logger=INFO,console",
    ]  # fmt: skip


class HBaseService(JvmService):
    def __init__(self) -> None:
        super().__init__("hbase", "Apache HBase standalone (master, regionserver, ZooKeeper)")

    def ports(self, s: Settings) -> list[int]:
        return [s.zookeeper_port, s.hbase_master_port, s.hbase_regionserver_port]

    def prepare(self, s: Settings) -> None:
        base = s.data_dir / "hbase"
        for sub in ("root", "tmp", "zk"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        render(
            "hbase-site.xml",
            s.conf_dir / "hbase" / "hbase-site.xml",
            root_dir=base / "root",
            tmp_dir=base / "tmp",
            zk_dir=base / "zk",
            host=s.bind_host,
            zk_port=s.zookeeper_port,
            master_port=s.hbase_master_port,
            regionserver_port=s.hbase_regionserver_port,
        )
        render("hbase-log4j2.properties", s.conf_dir / "hbase" / "log4j2.properties")

    def command(self, s: Settings) -> list[str]:
        return [
            java(), *hbase_jvm_flags(s, s.hbase_heap, "master"),
            "-cp", hbase_classpath(s),
            "org.apache.hadoop.hbase.master.HMaster", "start",
        ]  # fmt: skip


class ThriftService(JvmService):
    def __init__(self) -> None:
        super().__init__("hbase-thrift", "HBase Thrift server (happybase endpoint)")

    def ports(self, s: Settings) -> list[int]:
        return [s.thrift_port]

    def command(self, s: Settings) -> list[str]:
        return [
            java(), *hbase_jvm_flags(s, s.thrift_heap, "thrift"),
            "-cp", hbase_classpath(s),
            "org.apache.hadoop.hbase.thrift.ThriftServer",
            "-b", s.bind_host, "-p", str(s.thrift_port), "-threadpool", "start",
        ]  # fmt: skip

    def ready(self, s: Settings) -> bool:
        """Ready when a table listing over Thrift succeeds (master, meta and Thrift all up)."""
        if not super().ready(s):
            return False
        import happybase

        try:
            conn = happybase.Connection(s.bind_host, s.thrift_port, timeout=5000)
            try:
                conn.tables()
            finally:
                conn.close()
            return True
        except Exception:  # noqa: BLE001 - any failure means "not ready yet"
            return False


def python_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for child processes: this interpreter's bin/ first on PATH (spark-submit, airflow)."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    if extra:
        env.update(extra)
    return env
