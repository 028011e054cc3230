"""The platform as a multi-node cluster on one host: ``docker/`` built and run by ``tormenta cluster``.

What ``up`` does, each step printed as it goes:

1. the engine: Debian's ``docker.io``, ``docker-compose`` and ``debootstrap`` when missing, and a
   ``dockerd`` of its own, without bridges or firewall rules (every container uses the host's
   network and binds 127.0.0.1), its socket under ``/tmp`` and its data under ``var/cluster``;
2. the base image: ``TORMENTA_CLUSTER_BASE_IMAGE`` when set (``debian:bookworm-slim`` where a
   registry is reachable), else a Debian bookworm made here with ``debootstrap`` (no registry);
3. the image: wheels of this virtualenv's exact packages, the local stack's Maven jars and the
   project's files (``git ls-files``), built from ``docker/Dockerfile``;
4. the secrets, generated once into ``var/cluster/secrets`` (0600, mounted read-only): Fernet
   key, JWT secret, API secret key, PostgreSQL and user passwords, the geo device key, Kafka's
   cluster id, and the Airflow connections and pools that point the DAGs at the cluster;
5. ``docker-compose up``, then a wait until every service reports healthy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tormenta.settings import REPO_ROOT, load
from tormenta.stack.airflow_setup import (
    USERS,
    connections_for,
    new_fernet_key,
    new_jwt_secret,
    new_password,
    new_token,
    pools,
    write_private,
)

DOCKER_DIR = REPO_ROOT / "docker"
COMPOSE_FILE = DOCKER_DIR / "docker-compose.yml"
PROJECT = "tormenta"
IMAGE = "tormenta:cluster"
BASE_IMAGE = "tormenta-base:bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "openjdk-17-jre-headless", "procps", "postgresql-15", "ca-certificates")
ENGINE_PACKAGES = {"dockerd": "docker.io", "docker-compose": "docker-compose", "debootstrap": "debootstrap"}
JAR_COMPONENTS = ("kafka", "hbase", "sink", "spark")
# The Spark cluster's cores (2 workers x 2): what the Airflow pool hands out on the cluster.
CLUSTER_CORES = 4


def say(msg: str) -> None:
    print(f"[cluster] {msg}", flush=True)


def root() -> Path:
    return load().home / "cluster"


def data_dir() -> Path:
    return Path(os.environ.get("TORMENTA_CLUSTER_DATA") or root() / "data")


def secrets_dir() -> Path:
    return root() / "secrets"


def cluster_env() -> dict[str, str]:
    """docker/cluster.env as a dict: the ports and settings every container shares."""
    out = {}
    for line in (DOCKER_DIR / "cluster.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


@dataclass(frozen=True)
class Endpoints:
    """Where the cluster's services listen, from docker/cluster.env (one source for both sides)."""

    kafka_bootstrap: str
    zookeeper: str
    thrift_port: int
    airflow_url: str
    spark_master: str
    namenode: str

    @classmethod
    def load(cls) -> Endpoints:
        e = cluster_env()
        return cls(
            kafka_bootstrap=",".join(f"127.0.0.1:{p}" for p in e["KAFKA_PORTS"].split(",")),
            zookeeper=f"127.0.0.1:{e['ZOOKEEPER_PORT']}",
            thrift_port=int(e["THRIFT_PORT"]),
            airflow_url=f"http://127.0.0.1:{e['AIRFLOW_PORT']}",
            spark_master=f"spark://127.0.0.1:{e['SPARK_MASTER_PORT']}",
            namenode=f"hdfs://127.0.0.1:{e['NAMENODE_PORT']}",
        )


# ------------------------------------------------------------------------------------------ engine

def engine_dir() -> Path:
    """Socket and exec root: a short path (unix sockets are limited to 108 bytes)."""
    tag = hashlib.sha256(str(root()).encode()).hexdigest()[:8]
    return Path(f"/tmp/tormenta-docker-{tag}")


def docker_env() -> dict[str, str]:
    return {**os.environ, "DOCKER_HOST": f"unix://{engine_dir() / 'docker.sock'}",
            "TORMENTA_CLUSTER_DATA": str(data_dir()), "TORMENTA_CLUSTER_SECRETS": str(secrets_dir()),
            "COMPOSE_HTTP_TIMEOUT": "600"}  # fmt: skip


def docker(*args: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("docker") or "docker"
    return subprocess.run([exe, *args], env=docker_env(), check=check, text=True, capture_output=capture)


def compose(*args: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("docker-compose") or "docker-compose"
    return subprocess.run([exe, "-f", str(COMPOSE_FILE), "-p", PROJECT, *args], env=docker_env(), check=check,
                          text=True, capture_output=capture)  # fmt: skip


def engine_running() -> bool:
    return (engine_dir() / "docker.sock").exists() and docker("info", check=False).returncode == 0


def ensure_engine() -> None:
    missing = [pkg for exe, pkg in ENGINE_PACKAGES.items() if not shutil.which(exe)]
    if missing:
        if os.geteuid() != 0:
            raise RuntimeError(f"the cluster needs {' '.join(missing)}: sudo apt-get install -y {' '.join(missing)}")
        say(f"installing {' '.join(missing)} (Debian packages)")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})  # fmt: skip
    if engine_running():
        return
    say("starting dockerd (no bridge, no iptables; containers use the host's loopback)")
    engine_dir().mkdir(parents=True, exist_ok=True)
    (root() / "engine").mkdir(parents=True, exist_ok=True)
    log = open(root() / "dockerd.log", "ab")  # noqa: SIM115 - handed to the daemon
    proc = subprocess.Popen(
        ["dockerd", "--iptables=false", "--ip6tables=false", "--bridge=none", "--data-root", str(root() / "engine"),
         "--exec-root", str(engine_dir() / "exec"), "--pidfile", str(engine_dir() / "dockerd.pid"),
         "--host", f"unix://{engine_dir() / 'docker.sock'}"],
        stdout=log, stderr=log, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while not engine_running():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"dockerd did not start; see {root() / 'dockerd.log'}")
        time.sleep(1)


def stop_engine() -> None:
    pidfile = engine_dir() / "dockerd.pid"
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text().strip())
    say(f"stopping dockerd (pid {pid})")
    try:
        os.kill(pid, 15)
        for _ in range(60):
            os.kill(pid, 0)
            time.sleep(0.5)
    except ProcessLookupError:
        pass
    # dockerd leaves its network namespace mounted under its exec root: unmount, then remove
    with open("/proc/mounts") as fh:
        mounts = [line.split()[1] for line in fh if line.split()[1].startswith(str(engine_dir()))]
    for mount in sorted(mounts, reverse=True):
        subprocess.run(["umount", "-l", mount], check=False)
    shutil.rmtree(engine_dir(), ignore_errors=True)


def image_exists(name: str) -> bool:
    return docker("image", "inspect", name, check=False).returncode == 0


# ------------------------------------------------------------------------------------------ images

def base_image() -> str:
    """The image the Dockerfile builds FROM (its ARG BASE_IMAGE)."""
    chosen = os.environ.get("TORMENTA_CLUSTER_BASE_IMAGE", "").strip()
    if chosen:
        return chosen
    if image_exists(BASE_IMAGE):
        return BASE_IMAGE
    rootfs = root() / "rootfs"
    if not (rootfs / "usr" / "bin" / "java").exists():
        say(f"debootstrap bookworm with {', '.join(BASE_PACKAGES)} (no registry here; ~2 min)")
        shutil.rmtree(rootfs, ignore_errors=True)
        subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", "bookworm",
                        str(rootfs)], check=True)  # fmt: skip
    say(f"importing the root file system as {BASE_IMAGE}")
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run([shutil.which("docker") or "docker", "import", "-", BASE_IMAGE], stdin=tar.stdout,
                   env=docker_env(), check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    tar.wait()
    shutil.rmtree(rootfs, ignore_errors=True)
    return BASE_IMAGE


def project_files() -> list[str]:
    """What git would commit: tracked files and new ones that are not ignored."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO_ROOT,
                         check=True, capture_output=True).stdout.decode()  # fmt: skip
    return sorted(f for f in out.split("\0") if f and (REPO_ROOT / f).is_file())


def build_context() -> Path:
    """var/cluster/context: Dockerfile, wheels (this virtualenv's exact versions), jars, the project."""
    from tormenta import jvm

    ctx = root() / "context"
    wheels = ctx / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    freeze = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], check=True,
                            capture_output=True, text=True).stdout  # fmt: skip
    lock = "".join(line + "\n" for line in sorted(freeze.splitlines()) if line and not line.startswith("-e "))
    if not (wheels / "requirements.lock").exists() or (wheels / "requirements.lock").read_text() != lock:
        say("wheels of the virtualenv's packages (pip wheel; from pip's cache when warm)")
        (wheels / "requirements.lock").write_text(lock)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--progress-bar", "off", "--no-deps", "-q",
                        "-r", str(wheels / "requirements.lock"), "-w", str(wheels)], check=True)  # fmt: skip
    say("jars of the local stack (Maven)")
    jvm.ensure_all()
    shutil.rmtree(ctx / "jars", ignore_errors=True)
    for component in JAR_COMPONENTS:
        shutil.copytree(jvm.jars_dir(component), ctx / "jars" / component, copy_function=os.link,
                        ignore=shutil.ignore_patterns("*.log", ".stamp*"))  # fmt: skip
    say("the project's files")
    shutil.rmtree(ctx / "app", ignore_errors=True)
    for rel in project_files():
        target = ctx / "app" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, target)
    shutil.copy2(DOCKER_DIR / "Dockerfile", ctx / "Dockerfile")
    return ctx


def build_image() -> None:
    base = base_image()
    ctx = build_context()
    say(f"docker build {IMAGE} FROM {base}")
    t0 = time.monotonic()
    subprocess.run([shutil.which("docker") or "docker", "build", "--network", "host", "--build-arg",
                    f"BASE_IMAGE={base}", "-t", IMAGE, str(ctx)], env={**docker_env(), "DOCKER_BUILDKIT": "0"},
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    say(f"built {IMAGE} in {time.monotonic() - t0:.0f} s")


# ----------------------------------------------------------------------------------------- secrets

def ensure_secrets() -> Path:
    """Generate the cluster's secrets once; connections and pools are rewritten on each ``up``."""
    folder = secrets_dir()
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    from tormenta.devices import new_key
    from tormenta.stack.services import new_kafka_cluster_id

    makers = {"fernet.key": new_fernet_key, "jwt.secret": new_jwt_secret,
              "api-secret.key": new_token, "postgres.password": new_token, "geo-devices.key": new_key,
              "kafka-cluster.id": new_kafka_cluster_id,
              "airflow-passwords.json": lambda: json.dumps({u: new_password() for u in USERS})}  # fmt: skip
    for name, make in makers.items():
        if not (folder / name).exists():
            write_private(folder / name, make() + "\n")
    e = Endpoints.load()
    conns = connections_for(
        spark_master=e.spark_master, spark_desc="Spark standalone cluster (docker/: a master and 2 workers).",
        kafka_bootstrap=e.kafka_bootstrap, kafka_desc="Kafka cluster (docker/: 3 KRaft brokers, replication 3).",
        airflow_url=e.airflow_url, passwords=passwords(), thrift_host="127.0.0.1", thrift_port=e.thrift_port,
        zookeeper=e.zookeeper,
    )  # fmt: skip
    write_private(folder / "connections.json", json.dumps(conns, indent=2))
    write_private(folder / "pools.json", json.dumps(pools(CLUSTER_CORES), indent=2))
    return folder


def passwords() -> dict[str, str]:
    return json.loads((secrets_dir() / "airflow-passwords.json").read_text())


# --------------------------------------------------------------------------------------- lifecycle

def services() -> list[str]:
    return compose("config", "--services", capture=True).stdout.split()


def health(names: list[str] | None = None) -> dict[str, str]:
    """service -> running state and health (``healthy``, ``starting``, ``exited(0)``, ``missing`` ...)
    of ``names`` (default: every service of the compose file)."""
    out = {}
    for svc in names or services():
        res = docker("inspect", f"tormenta-{svc}", "--format",
                     "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}} {{.State.ExitCode}}",
                     check=False)  # fmt: skip
        if res.returncode:
            out[svc] = "missing"
            continue
        status, *rest = res.stdout.split()
        code = rest[-1]
        hc = rest[0] if len(rest) == 2 else ""
        if status != "running":  # a stopped container keeps its last health status: not what counts
            out[svc] = f"exited({code})" if status == "exited" else status
        else:
            out[svc] = hc or status
    return out


def wait_healthy(timeout: float = 900, only: list[str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = None
    names = only or services()  # `docker-compose config` once, not on every poll
    while True:
        states = health(names)
        bad = {k: v for k, v in states.items() if v not in ("healthy", "exited(0)")}
        if not bad:
            return
        failed = {k: v for k, v in bad.items() if v.startswith("exited") or v in ("unhealthy", "dead")}
        summary = ", ".join(f"{k}={v}" for k, v in sorted(bad.items()))
        if summary != last:
            say(f"waiting for {summary}")
            last = summary
        if failed:
            raise RuntimeError(f"not healthy: {failed}; see `docker logs tormenta-<service>` "
                               f"(DOCKER_HOST={docker_env()['DOCKER_HOST']})")  # fmt: skip
        if time.monotonic() > deadline:
            raise TimeoutError(f"still not healthy after {timeout:.0f}s: {summary}")
        time.sleep(3)


def show_failures(lines: int = 60) -> None:
    """The end of the log of every service that is not healthy: what CI prints when a start fails."""
    for svc, state in health().items():
        if state in ("healthy", "exited(0)", "missing"):
            continue
        say(f"{svc} is {state}; the last {lines} lines of its log:")
        res = docker("logs", "--tail", str(lines), f"tormenta-{svc}", check=False)
        for line in (res.stdout + res.stderr).splitlines():
            print(f"  {svc} | {line}", flush=True)


def up(build: bool = True) -> Endpoints:
    t0 = time.monotonic()
    ensure_engine()
    ensure_secrets()
    if build or not image_exists(IMAGE):
        build_image()
    for svc in services():
        (data_dir() / svc).mkdir(parents=True, exist_ok=True)
    (data_dir() / "airflow-logs").mkdir(parents=True, exist_ok=True)
    say("docker-compose up -d (health checks order the start; slow on 2 cores)")
    try:
        compose("up", "-d", "--no-build", "--remove-orphans")
        wait_healthy()
    except (subprocess.CalledProcessError, RuntimeError, TimeoutError):
        show_failures()
        raise
    say(f"up in {time.monotonic() - t0:.0f} s; Airflow at {Endpoints.load().airflow_url} "
        f"(users and passwords: {secrets_dir() / 'airflow-passwords.json'})")  # fmt: skip
    return Endpoints.load()


def down(remove_data: bool = False, engine: bool = False) -> None:
    if engine_running():
        say("docker-compose down")
        compose("down", "--remove-orphans", "--timeout", "30", check=False)
    if engine:
        stop_engine()
    if remove_data:
        say(f"removing {data_dir()}")
        shutil.rmtree(data_dir(), ignore_errors=True)


def kill(service: str) -> None:
    """``kill -9`` of the node's process (its container's pid 1)."""
    docker("kill", "--signal", "KILL", f"tormenta-{service}")


def start(service: str) -> None:
    docker("start", f"tormenta-{service}")


def memory() -> dict[str, float]:
    """MiB used per container (``docker stats``)."""
    out = docker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}").stdout
    units = {"KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0, "B": 1 / 1024 / 1024}
    result = {}
    for line in out.splitlines():
        name, usage = line.split(" ", 1)
        value = usage.split("/")[0].strip()
        for unit, factor in units.items():
            if value.endswith(unit):
                result[name.removeprefix("tormenta-")] = round(float(value[: -len(unit)]) * factor, 1)
                break
    return result


def status() -> int:
    if not engine_running():
        print("the cluster's engine is not running (tormenta cluster up)")
        return 1
    states = health()
    for svc, state in states.items():
        print(f"{svc:24} {state}")
    return 0 if all(v in ("healthy", "exited(0)") for v in states.values()) else 1
