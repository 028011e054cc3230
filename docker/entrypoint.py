"""One entry point for every container of the cluster: ``entrypoint.py <role>`` / ``health <role>``.

A role renders its configuration from the environment (``docker/cluster.env`` and the service's
own variables in ``docker-compose.yml``), prepares its storage once (Kafka's and HDFS's format,
PostgreSQL's initdb), then ``exec``s the service: the container's pid 1 is the service itself, so
``docker kill`` is a real ``kill -9`` of a node. Secrets come from the read-only mount
``/run/tormenta-secrets`` (made by ``tormenta cluster up``), never from the image.

The JVM command lines follow the upstream ``bin/`` scripts (see ../shared/JVM-STACK.md in the
project's notes): the jars are the local stack's Maven jars, copied into the image.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from xml.sax.saxutils import escape

APP = Path(os.environ.get("TORMENTA_APP", "/opt/tormenta/app"))
JARS = Path(os.environ.get("TORMENTA_JARS_DIR", "/opt/tormenta/jars"))
SECRETS = Path(os.environ.get("TORMENTA_SECRETS", "/run/tormenta-secrets"))
DATA = Path(os.environ.get("TORMENTA_DATA", "/data"))
CONF = Path("/tmp/tormenta-conf")
HOST = "127.0.0.1"  # host networking: every service binds loopback only
VENV_BIN = Path(sys.executable).parent


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise SystemExit(f"[entrypoint] {name} is not set")
    return value


def port(name: str) -> int:
    return int(env(name))


def secret(name: str) -> str:
    return (SECRETS / name).read_text().strip()


def say(msg: str) -> None:
    print(f"[entrypoint] {msg}", flush=True)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def properties(values: dict[str, object]) -> str:
    return "".join(f"{k}={v}\n" for k, v in values.items())


def hadoop_xml(values: dict[str, object]) -> str:
    body = "".join(f"  <property><name>{escape(k)}</name><value>{escape(str(v))}</value></property>\n"
                   for k, v in values.items())  # fmt: skip
    return f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n'


def exec_(cmd: list[str], extra_env: dict[str, str] | None = None) -> None:
    say("exec " + " ".join(cmd[:1] + [c for c in cmd[1:] if not c.startswith("--add-")][-6:]))
    os.execvpe(cmd[0], cmd, {**os.environ, **(extra_env or {})})


def java_cmd(heap: str, classpath: str, main: str, *args: str, flags: list[str] | None = None) -> list[str]:
    return ["java", f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError",
            *(flags or []), "-cp", classpath, main, *args]  # fmt: skip


# ----------------------------------------------------------------------------------------- Kafka

KAFKA_FLAGS = ["-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35", "-Djava.awt.headless=true"]


def kafka_config() -> dict[str, object]:
    node = int(env("KAFKA_NODE_ID"))
    ports = [int(p) for p in env("KAFKA_PORTS").split(",")]  # the brokers' ports, node i at ports[i-1]
    me = ports[node - 1]
    return {
        "process.roles": "broker,controller",
        "node.id": node,
        "controller.quorum.voters": ",".join(f"{i + 1}@{HOST}:{p + 1}" for i, p in enumerate(ports)),
        "listeners": f"PLAINTEXT://{HOST}:{me},CONTROLLER://{HOST}:{me + 1}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{me}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": DATA / "kafka",
        "num.partitions": 3,
        # durability: every record on 3 brokers, acknowledged by 2, no election of a stale replica
        "default.replication.factor": 3,
        "min.insync.replicas": 2,
        "unclean.leader.election.enable": "false",
        "offsets.topic.replication.factor": 3,
        "transaction.state.log.replication.factor": 3,
        "transaction.state.log.min.isr": 2,
        "share.coordinator.state.topic.replication.factor": 3,
        "share.coordinator.state.topic.min.isr": 2,
        "group.initial.rebalance.delay.ms": 0,
        "auto.create.topics.enable": "false",
    }


def role_kafka() -> None:
    conf = write(CONF / "kafka" / "server.properties", properties(kafka_config()))
    log4j = write(CONF / "kafka" / "log4j2.yaml", (APP / "tormenta/stack/templates/kafka-log4j2.yaml").read_text())
    cp = str(JARS / "kafka" / "*")
    if not (DATA / "kafka" / "meta.properties").exists():
        say("formatting Kafka storage")
        subprocess.run(["java", "-Xmx256M", "-cp", cp, "kafka.tools.StorageTool", "format", "--ignore-formatted",
                        "-t", secret("kafka-cluster.id"), "-c", str(conf)], check=True)  # fmt: skip
    logs = DATA / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    exec_(java_cmd(env("HEAP", "512M"), cp, "kafka.Kafka", str(conf),
                   flags=[*KAFKA_FLAGS, f"-Dkafka.logs.dir={logs}", f"-Dlog4j2.configurationFile={log4j}"]))  # fmt: skip


# ------------------------------------------------------------------------- ZooKeeper, HDFS, HBase

HBASE_FLAGS = [
    "-Dorg.apache.hbase.thirdparty.io.netty.tryReflectionSetAccessible=true", "--add-modules", "jdk.unsupported",
    *[f"--add-opens=java.base/{p}=ALL-UNNAMED" for p in ("java.io", "java.nio", "sun.nio.ch", "java.lang",
                                                          "jdk.internal.ref", "java.lang.reflect", "java.util",
                                                          "java.util.concurrent")],
    *[f"--add-exports={p}=ALL-UNNAMED" for p in ("java.base/jdk.internal.misc", "java.security.jgss/sun.security.krb5",
                                                 "java.base/sun.net.dns", "java.base/sun.net.util")],
    "-Djava.util.logging.config.class=org.apache.hadoop.hbase.logging.JulToSlf4jInitializer",
]  # fmt: skip


def namenode_uri() -> str:
    return f"hdfs://{HOST}:{port('NAMENODE_PORT')}"


def zookeeper_quorum() -> str:
    return f"{HOST}:{port('ZOOKEEPER_PORT')}"


def hadoop_conf(folder: Path, extra_hdfs: dict[str, object] | None = None) -> None:
    """core-site and hdfs-site: what every HDFS client and server of the cluster reads."""
    write(folder / "core-site.xml", hadoop_xml({"fs.defaultFS": namenode_uri(), "hadoop.tmp.dir": DATA / "tmp"}))
    write(folder / "hdfs-site.xml", hadoop_xml({
        "dfs.replication": 2,
        "dfs.permissions.enabled": "false",
        "dfs.namenode.rpc-address": f"{HOST}:{port('NAMENODE_PORT')}",
        "dfs.namenode.http-address": f"{HOST}:{port('NAMENODE_HTTP_PORT')}",
        "dfs.namenode.datanode.registration.ip-hostname-check": "false",
        # 2 DataNodes: a write pipeline that lost one goes on with the other instead of failing
        "dfs.client.block.write.replace-datanode-on-failure.policy": "NEVER",
        # a killed DataNode is declared dead after 2 x 15 s + 10 x 3 s = 60 s (default: 10.5 min)
        "dfs.namenode.heartbeat.recheck-interval": 15000,
        "dfs.heartbeat.interval": 3,
        **(extra_hdfs or {}),
    }))  # fmt: skip
    write(folder / "log4j2.properties", (APP / "tormenta/stack/templates/hbase-log4j2.properties").read_text())
    # Hadoop 3.3 still configures log4j 1 through log4j-1.2-api; the same file serves both.
    write(folder / "log4j.properties", "log4j.rootLogger=INFO,console\nlog4j.appender.console="
          "org.apache.log4j.ConsoleAppender\nlog4j.appender.console.layout=org.apache.log4j.PatternLayout\n"
          "log4j.appender.console.layout.ConversionPattern=%d %p %c{1}: %m%n\n")  # fmt: skip


def hbase_classpath(folder: Path) -> str:
    # config folder first (as bin/hbase does); the HTTP servers of HDFS look for webapps/<name> on it
    return f"{folder}:{JARS / 'hbase' / '*'}"


def role_zookeeper() -> None:
    folder = CONF / "zookeeper"
    (DATA / "zk").mkdir(parents=True, exist_ok=True)
    cfg = write(folder / "zoo.cfg", properties({
        "dataDir": DATA / "zk", "clientPort": port("ZOOKEEPER_PORT"), "clientPortAddress": HOST,
        "tickTime": 2000, "maxSessionTimeout": 40000, "maxClientCnxns": 0, "admin.enableServer": "false",
        "4lw.commands.whitelist": "ruok,srvr", "autopurge.purgeInterval": 1,
    }))  # fmt: skip
    hadoop_conf(folder)
    exec_(java_cmd(env("HEAP", "256M"), hbase_classpath(folder), "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                   str(cfg)))  # fmt: skip


def role_namenode() -> None:
    folder = CONF / "hdfs"
    hadoop_conf(folder, {"dfs.namenode.name.dir": DATA / "name"})
    (folder / "webapps" / "hdfs").mkdir(parents=True, exist_ok=True)  # the jar ships no web pages
    cp = hbase_classpath(folder)
    if not (DATA / "name" / "current" / "VERSION").exists():
        say("formatting the NameNode")
        subprocess.run(["java", "-Xmx256M", "-cp", cp, "org.apache.hadoop.hdfs.server.namenode.NameNode",
                        "-format", "-nonInteractive", "-force"], check=True)  # fmt: skip
    exec_(java_cmd(env("HEAP", "512M"), cp, "org.apache.hadoop.hdfs.server.namenode.NameNode"))


def role_datanode() -> None:
    folder = CONF / "hdfs"
    base = port("DATANODE_PORT")
    hadoop_conf(folder, {
        "dfs.datanode.data.dir": DATA / "dn",
        "dfs.datanode.address": f"{HOST}:{base}",
        "dfs.datanode.http.address": f"{HOST}:{base + 1}",
        "dfs.datanode.ipc.address": f"{HOST}:{base + 2}",
        "dfs.datanode.hostname": HOST,
    })  # fmt: skip
    (folder / "webapps" / "datanode").mkdir(parents=True, exist_ok=True)
    exec_(java_cmd(env("HEAP", "384M"), hbase_classpath(folder), "org.apache.hadoop.hdfs.server.datanode.DataNode"))


def hbase_conf(folder: Path) -> None:
    hadoop_conf(folder)
    write(folder / "hbase-site.xml", hadoop_xml({
        "hbase.cluster.distributed": "true",
        "hbase.rootdir": f"{namenode_uri()}/hbase",
        "hbase.tmp.dir": DATA / "tmp",
        "hbase.zookeeper.quorum": zookeeper_quorum(),
        # a killed region server's regions move after its ZooKeeper session expires (default 90 s)
        "zookeeper.session.timeout": 20000,
        "hbase.master.port": port("HBASE_MASTER_PORT"),
        "hbase.master.info.port": -1,
        "hbase.regionserver.port": os.environ.get("REGIONSERVER_PORT", "16020"),
        "hbase.regionserver.info.port": -1,
        "hbase.thrift.info.port": -1,
        "hbase.master.hostname": HOST,
        "hbase.regionserver.hostname": HOST,
        # the WAL's stream-capability check stays on: HDFS syncs it (hflush/hsync)
    }))  # fmt: skip


def hbase_role(main: str, *args: str, proc: str) -> None:
    folder = CONF / "hbase"
    hbase_conf(folder)
    logs = DATA / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    exec_(java_cmd(env("HEAP", "512M"), hbase_classpath(folder), main, *args,
                   flags=[*HBASE_FLAGS, f"-Dproc_{proc}", f"-Dhbase.log.dir={logs}", "-Dhbase.root.logger=INFO,console"]))  # fmt: skip


def role_hbase_master() -> None:
    hbase_role("org.apache.hadoop.hbase.master.HMaster", "start", proc="master")


def role_regionserver() -> None:
    hbase_role("org.apache.hadoop.hbase.regionserver.HRegionServer", "start", proc="regionserver")


def role_thrift() -> None:
    hbase_role("org.apache.hadoop.hbase.thrift.ThriftServer", "-b", HOST, "-p", env("THRIFT_PORT"),
               "-threadpool", "start", proc="thrift")  # fmt: skip


# ----------------------------------------------------------------------------------------- Spark

def spark_env() -> dict[str, str]:
    return {"SPARK_LOCAL_IP": HOST, "SPARK_LOCAL_DIRS": str(DATA / "local"), "SPARK_WORKER_DIR": str(DATA / "work"),
            "SPARK_DAEMON_MEMORY": env("HEAP", "512m"), "SPARK_NO_DAEMONIZE": "1"}  # fmt: skip


def role_spark_master() -> None:
    exec_([str(VENV_BIN / "spark-class"), "org.apache.spark.deploy.master.Master", "--host", HOST,
           "--port", env("SPARK_MASTER_PORT"), "--webui-port", env("SPARK_WEBUI_PORT")], spark_env())  # fmt: skip


def role_spark_worker() -> None:
    for sub in ("local", "work"):
        (DATA / sub).mkdir(parents=True, exist_ok=True)
    exec_([str(VENV_BIN / "spark-class"), "org.apache.spark.deploy.worker.Worker", "--host", HOST,
           "--port", env("SPARK_WORKER_PORT"), "--webui-port", env("SPARK_WEBUI_PORT"),
           "--cores", env("SPARK_WORKER_CORES", "2"), "--memory", env("SPARK_WORKER_MEMORY", "2g"),
           f"spark://{HOST}:{env('SPARK_MASTER_PORT')}"], spark_env())  # fmt: skip


# ------------------------------------------------------------------------- PostgreSQL and Airflow

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def as_postgres() -> None:
    uid, gid = _postgres_ids()
    os.setgid(gid)
    os.setuid(uid)


def role_postgres() -> None:
    pgdata = DATA / "pg"
    pgdata.mkdir(parents=True, exist_ok=True)
    os.chown(pgdata, *_postgres_ids())
    if not (pgdata / "PG_VERSION").exists():
        say("initdb")
        pwfile = Path("/tmp/pg-password")
        pwfile.write_text(secret("postgres.password") + "\n")
        os.chown(pwfile, *_postgres_ids())
        subprocess.run([str(PG_BIN / "initdb"), "-D", str(pgdata), "-U", "airflow", "--pwfile", str(pwfile),
                        "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8"],
                       check=True, preexec_fn=as_postgres)  # fmt: skip
        pwfile.unlink()
    as_postgres()
    exec_([str(PG_BIN / "postgres"), "-D", str(pgdata), "-c", f"listen_addresses={HOST}",
           "-c", f"port={env('POSTGRES_PORT')}", "-c", "unix_socket_directories=/tmp", "-c", "max_connections=200"])  # fmt: skip


def _postgres_ids() -> tuple[int, int]:
    import pwd

    pw = pwd.getpwnam("postgres")
    return pw.pw_uid, pw.pw_gid


def airflow_env() -> dict[str, str]:
    """Airflow's configuration as environment variables: the same settings as the local stack's
    airflow.cfg (tormenta/stack/airflow_setup.py), with PostgreSQL and the FAB auth manager."""
    sys.path.insert(0, str(APP))
    from tormenta.stack.airflow_setup import airflow_settings

    url = f"http://{HOST}:{env('AIRFLOW_PORT')}"
    db = f"airflow:{secret('postgres.password')}@{HOST}:{env('POSTGRES_PORT')}/airflow"
    settings = airflow_settings(
        base_url=url, host=HOST, port=int(env("AIRFLOW_PORT")), logs=Path(env("AIRFLOW_LOGS", "/opt/airflow-logs")),
        fernet_key=secret("fernet.key"), api_secret=secret("api-secret.key"), jwt_secret=secret("jwt.secret"),
        database=f"postgresql+psycopg2://{db}", database_async=f"postgresql+asyncpg://{db}",
        auth_manager="airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager",
    )  # fmt: skip
    out = {f"AIRFLOW__{section.upper()}__{key.upper()}": str(value)
           for section, values in settings.items() for key, value in values.items()}  # fmt: skip
    home = DATA / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    out.update({"AIRFLOW_HOME": str(home), "TORMENTA_HOME": str(DATA / "home"),
                "TORMENTA_GEO_DEVICE_KEY_FILE": str(SECRETS / "geo-devices.key"), "NO_PROXY": "127.0.0.1,localhost",
                "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable})  # fmt: skip
    return out


def airflow(*args: str) -> str:
    """An ``airflow`` CLI command; on failure, the init ends with the command's own output."""
    result = subprocess.run([str(VENV_BIN / "airflow"), *args], env={**os.environ, **airflow_env()},
                            capture_output=True, text=True)  # fmt: skip
    if result.returncode:
        raise SystemExit(f"[entrypoint] airflow {' '.join(args[:2])} exited {result.returncode}:\n"
                         f"{result.stdout[-3000:]}{result.stderr[-3000:]}")  # fmt: skip
    return result.stdout


def retry(what: str, step, timeout: float = 180.0, pause: float = 5.0):
    """``step()`` until it succeeds or ``timeout`` s have passed, saying why each try failed: on a
    busy host a dependency can be healthy and still refuse for a while (PostgreSQL's startup, a
    broker fenced for a missed heartbeat, so that a topic of replication 3 has too few brokers)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return step()
        except Exception as exc:  # noqa: BLE001 - said, retried, raised at the deadline
            if time.monotonic() > deadline:
                raise
            say(f"{what}: {type(exc).__name__}: {exc}; again in {pause:.0f} s")
            time.sleep(pause)


def create_database() -> None:
    import psycopg2

    conn = psycopg2.connect(host=HOST, port=int(env("POSTGRES_PORT")), user="airflow",
                            password=secret("postgres.password"), dbname="postgres", connect_timeout=10)  # fmt: skip
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = 'airflow'")
            if not cur.fetchone():
                say("creating database airflow")
                cur.execute("CREATE DATABASE airflow")
    finally:
        conn.close()


def role_airflow_init() -> None:
    """One shot, safe to run again: create and migrate the database, create the users, the default
    topics, import connections and pools. Every step says what it does and why it failed."""
    retry("PostgreSQL", create_database)
    say("airflow db migrate")
    airflow("db", "migrate")
    roles = {"admin": "Admin", "viewer": "Viewer", "alerts": "User"}
    passwords = json.loads(secret("airflow-passwords.json"))
    existing = airflow("users", "list", "--output", "json")  # JSON, or a "No data found" line
    for user, role in roles.items():
        if f'"{user}"' in existing:
            continue
        say(f"creating user {user} ({role})")
        airflow("users", "create", "--username", user, "--role", role, "--password", passwords[user],
                "--firstname", user, "--lastname", "tormenta", "--email", f"{user}@tormenta.invalid")  # fmt: skip
    # The default namespace's topics, durable (replication 3, min ISR 2): the batch DAG's scheduled
    # window reads them even before any micro-batch run made them.
    # And the batch DAG's file announcements, which its asset watcher reads from the start.
    from tormenta.batch import files_topic
    from tormenta.kafka import contract_topics, durability, ensure_topics

    bootstrap = ",".join(f"{HOST}:{p}" for p in env("KAFKA_PORTS").split(","))
    specs = [*contract_topics("tormenta"), files_topic(*durability())]
    created = retry("Kafka topics", lambda: ensure_topics(bootstrap, specs))
    say(f"topics {', '.join(created) or 'exist'}")
    for what in ("connections", "pools"):
        say(f"importing {what}")
        airflow(what, "import", str(SECRETS / f"{what}.json"))
    say("done")


def role_airflow(component: str) -> None:
    args = {"api-server": ["api-server", "--host", HOST, "--port", env("AIRFLOW_PORT")],
            "scheduler": ["scheduler", "--skip-serve-logs"],
            "dag-processor": ["dag-processor"], "triggerer": ["triggerer", "--skip-serve-logs"]}[component]  # fmt: skip
    exec_([str(VENV_BIN / "airflow"), *args], airflow_env())


# ------------------------------------------------------------------------------------ health checks

def port_open(p: int) -> bool:
    try:
        with socket.create_connection((HOST, p), timeout=2):
            return True
    except OSError:
        return False


def airflow_health() -> dict:
    with urllib.request.urlopen(f"http://{HOST}:{env('AIRFLOW_PORT')}/api/v2/monitor/health", timeout=5) as r:
        return json.loads(r.read())


def health(role: str) -> bool:
    if role == "kafka":
        from confluent_kafka.admin import AdminClient

        node = int(env("KAFKA_NODE_ID"))
        me = [int(p) for p in env("KAFKA_PORTS").split(",")][node - 1]
        admin = AdminClient({"bootstrap.servers": f"{HOST}:{me}", "socket.timeout.ms": 3000})
        return node in admin.list_topics(timeout=5).brokers
    if role == "zookeeper":
        with socket.create_connection((HOST, port("ZOOKEEPER_PORT")), timeout=3) as sock:
            sock.sendall(b"ruok")
            return sock.recv(4) == b"imok"
    if role == "thrift":
        import happybase

        conn = happybase.Connection(HOST, port("THRIFT_PORT"), timeout=10000)
        try:
            conn.tables()
        finally:
            conn.close()
        return True
    if role in ("airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        part = role.removeprefix("airflow-").replace("-", "_")
        return (airflow_health().get(part) or {}).get("status") == "healthy"
    if role == "airflow-api-server":
        return (airflow_health().get("metadatabase") or {}).get("status") == "healthy"
    ports = {"namenode": "NAMENODE_PORT", "datanode": "DATANODE_PORT", "hbase-master": "HBASE_MASTER_PORT",
             "regionserver": "REGIONSERVER_PORT", "spark-master": "SPARK_MASTER_PORT",
             "spark-worker": "SPARK_WORKER_PORT", "postgres": "POSTGRES_PORT"}  # fmt: skip
    return port_open(port(ports[role]))


ROLES = {
    "kafka": role_kafka, "zookeeper": role_zookeeper, "namenode": role_namenode, "datanode": role_datanode,
    "hbase-master": role_hbase_master, "regionserver": role_regionserver, "thrift": role_thrift,
    "spark-master": role_spark_master, "spark-worker": role_spark_worker, "postgres": role_postgres,
    "airflow-init": role_airflow_init,
    **{f"airflow-{c}": (lambda c=c: role_airflow(c)) for c in ("api-server", "scheduler", "dag-processor", "triggerer")},
}  # fmt: skip


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "health" and argv[1] in ROLES:
        try:
            return 0 if health(argv[1]) else 1
        except Exception as exc:  # noqa: BLE001 - unhealthy, with the reason for `docker inspect`
            print(f"unhealthy: {exc}")
            return 1
    if len(argv) != 1 or argv[0] not in ROLES:
        print(f"usage: entrypoint.py <role> | health <role>; roles: {', '.join(ROLES)}", file=sys.stderr)
        return 2
    os.chdir("/tmp")
    say(f"role {argv[0]} at {time.strftime('%H:%M:%S')}")
    ROLES[argv[0]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
