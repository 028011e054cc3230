"""The platform on the docker/ cluster: 3 Kafka brokers, HDFS, HBase with 2 region servers, a Spark
standalone cluster and Airflow on PostgreSQL, each role its own container (tormenta/stack/cluster.py).

The same DAG files as the local stack, driven through Airflow's REST API; only connections and
settings differ. Every test checks that no event is lost and none counted twice.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.request

import psutil
import pytest

from tests.cluster.harness import BATCH, MB, SMOKE, Run, wait_until
from tormenta.airflow_api import AirflowApiError, AirflowClient
from tormenta.settings import REPO_ROOT

pytestmark = pytest.mark.cluster

EXPECTED_SERVICES = {
    "kafka1", "kafka2", "kafka3", "zookeeper", "namenode", "datanode1", "datanode2", "hbase-master",
    "regionserver1", "regionserver2", "hbase-thrift", "spark-master", "spark-worker1", "spark-worker2", "postgres",
    "airflow-init", "airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
}  # fmt: skip


def container_pids(cluster) -> dict[str, set[int]]:
    """Every process of every running container, seen from the host (same pid namespace view)."""
    out = {}
    for name in EXPECTED_SERVICES:
        res = cluster.docker("inspect", "--format", "{{.State.Pid}}", f"tormenta-{name}", check=False)
        pid = int(res.stdout.strip() or 0) if res.returncode == 0 else 0
        if pid:
            proc = psutil.Process(pid)
            out[name] = {pid, *(c.pid for c in proc.children(recursive=True))}
    return out


def spark_apps(endpoints) -> dict:
    port = int(endpoints.spark_master.rsplit(":", 1)[1]) + 1103  # 17077 -> the master's web UI 18180
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/", timeout=10) as resp:
        return json.loads(resp.read())


@pytest.mark.contract(14)
def test_every_role_is_its_own_healthy_container_listening_on_loopback_only(cluster, results):
    states = cluster.health()
    assert set(states) == EXPECTED_SERVICES
    assert {k: v for k, v in states.items() if v not in ("healthy", "exited(0)")} == {}
    assert states["airflow-init"] == "exited(0)"  # the one-shot set-up finished
    pids = container_pids(cluster)
    listening = [c for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN]
    by_service = {name: [c.laddr for c in listening if c.pid in procs] for name, procs in pids.items()}
    # every server listens (Airflow's scheduler, DAG processor and triggerer serve no logs: nothing)
    clients = {"airflow-init", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"}
    assert all(by_service[name] for name in EXPECTED_SERVICES - clients), by_service
    loopback = ("127.0.0.1", "::1", "::ffff:127.0.0.1")  # the last: IPv4 loopback on a JVM's IPv6 socket
    public = {name: [a for a in addrs if a.ip not in loopback] for name, addrs in by_service.items()}
    assert {k: v for k, v in public.items() if v} == {}
    results["memory_idle_mib"] = cluster.memory()


def test_a_node_that_is_down_is_reported_with_the_end_of_its_log(cluster, capsys):
    """What `tormenta cluster up` prints when a start fails (CI has no other view of a container)."""
    cluster.kill("spark-worker2")
    try:
        assert cluster.health(["spark-worker2"]) == {"spark-worker2": "exited(137)"}
        with pytest.raises(RuntimeError, match="spark-worker2"):
            cluster.wait_healthy(timeout=30, only=["spark-worker2"])
        capsys.readouterr()
        cluster.show_failures()
        out = capsys.readouterr().out
        assert "spark-worker2 is exited(137); the last 60 lines of its log:" in out
        logged = cluster.docker("logs", "tormenta-spark-worker2", check=False)
        last = (logged.stdout + logged.stderr).strip().splitlines()[-1]
        assert f"  spark-worker2 | {last}" in out  # the container's own words
    finally:
        cluster.start("spark-worker2")
        cluster.wait_healthy(timeout=300, only=["spark-worker2"])


@pytest.mark.contract(14)
def test_secrets_are_generated_kept_out_of_the_image_and_no_default_password_works(cluster, endpoints, admin):
    folder = cluster.secrets_dir()
    for name in ("fernet.key", "jwt.secret", "api-secret.key", "postgres.password", "airflow-passwords.json"):
        assert (folder / name).stat().st_mode & 0o077 == 0, name  # owner only
    fernet = (folder / "fernet.key").read_text().strip()
    jwt = (folder / "jwt.secret").read_text().strip()
    assert len(fernet) == 44 and len(jwt) >= 48
    # nowhere in the image: not in its files, not in its environment or history
    found = cluster.docker("run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", cluster.IMAGE, "-c",
                           f"grep -rlF -e '{fernet}' -e '{jwt}' /opt /etc /root 2>/dev/null; "
                           "ls /run/tormenta-secrets 2>/dev/null | wc -l", check=False).stdout.split()  # fmt: skip
    assert found == ["0"], found
    inspect = cluster.docker("image", "inspect", cluster.IMAGE).stdout + cluster.docker(
        "history", "--no-trunc", cluster.IMAGE).stdout
    assert fernet not in inspect and jwt not in inspect
    # no default password: admin/admin and airflow/airflow get no token
    for user, password in (("admin", "admin"), ("airflow", "airflow")):
        with pytest.raises(AirflowApiError) as err:
            AirflowClient(endpoints.airflow_url, user, password).token()
        assert err.value.status in (400, 401, 403)
    anonymous = AirflowClient(endpoints.airflow_url)
    with pytest.raises(AirflowApiError) as err:
        anonymous.request("GET", "/api/v2/dags", auth=False)
    assert err.value.status in (401, 403)
    # the deployment's auth manager (FAB, with its roles), not the development-only Simple one
    roles = {r["name"] for r in admin.request("GET", "/auth/fab/v1/roles")["roles"]}
    assert {"Admin", "Viewer", "User"} <= roles
    viewer = AirflowClient(endpoints.airflow_url, "viewer", cluster.passwords()["viewer"])
    with pytest.raises(AirflowApiError) as err:
        viewer.trigger(SMOKE)
    assert err.value.status == 403


@pytest.mark.contract(14)
def test_no_example_dags_and_the_same_dag_files_as_the_local_stack(cluster, admin):
    dags = {d["dag_id"] for d in admin.request("GET", "/api/v2/dags?limit=100")["dags"]}
    local = {p.stem for p in (REPO_ROOT / "dags").glob("tormenta_*.py")}
    assert dags == local  # every DAG of the project, and nothing else (no example DAGs)
    assert admin.import_errors() == []
    listing = cluster.docker("exec", "tormenta-airflow-dag-processor", "sh", "-c",
                             "cd /opt/tormenta/app/dags && sha256sum *.py").stdout  # fmt: skip
    inside = {line.split()[1]: line.split()[0] for line in listing.splitlines()}
    here = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (REPO_ROOT / "dags").glob("*.py")}
    assert inside == here  # byte for byte: only connections and settings differ on the cluster


@pytest.mark.contract(14)
def test_topics_are_replicated_three_times_with_two_in_sync(cluster, endpoints, admin):
    from confluent_kafka.admin import AdminClient, ConfigResource

    run = admin.trigger(SMOKE, conf={})["dag_run_id"]  # creates its topic, runs Kafka -> Spark -> HBase
    assert admin.wait_for_run(SMOKE, run, timeout=900)["state"] == "success"
    client = AdminClient({"bootstrap.servers": endpoints.kafka_bootstrap})
    topic = client.list_topics("tormenta.smoke", timeout=30).topics["tormenta.smoke"]
    assert topic.error is None and len(topic.partitions) == 3
    assert all(len(p.replicas) == 3 and len(p.isrs) >= 2 for p in topic.partitions.values())
    resource = ConfigResource(ConfigResource.Type.TOPIC, "tormenta.smoke")
    config = client.describe_configs([resource])[resource].result()
    assert config["min.insync.replicas"].value == "2"
    broker = ConfigResource(ConfigResource.Type.BROKER, "1")
    assert client.describe_configs([broker])[broker].result()["unclean.leader.election.enable"].value == "false"


def test_hbase_writes_its_wal_to_hdfs_with_two_region_servers(cluster, hbase_endpoint):
    listing = cluster.docker("exec", "tormenta-namenode", "java", "-cp", "/tmp/tormenta-conf/hdfs:/opt/tormenta/jars/hbase/*",
                             "org.apache.hadoop.fs.FsShell", "-ls", "/hbase/WALs").stdout  # fmt: skip
    assert listing.count("127.0.0.1,16120") == 1 and listing.count("127.0.0.1,16220") == 1, listing
    with hbase_endpoint.session() as conn:
        assert conn.tables() is not None


@pytest.fixture(scope="module")
def undisturbed(cluster, admin, hbase_endpoint, request):
    """One micro-batch run of 4,000 comments on the cluster, stopped through the stop DAG."""
    run = Run(admin, hbase_endpoint, events=4000).start()
    request.addfinalizer(run.drop)
    t0 = time.monotonic()
    run.timings["first_1000_s"] = round(run.wait_stored(1000, timeout=900), 1)
    run.wait_stored(4000, timeout=600)
    run.timings["all_stored_s"] = round(time.monotonic() - t0, 1)
    run.finished = run.stop()
    run.timings["whole_run_s"] = round(time.monotonic() - t0, 1)
    return run


def test_microbatch_dag_runs_on_the_spark_cluster_and_stores_every_event_once(undisturbed, endpoints, results):
    check = undisturbed.check()
    assert check == {"stored": 4000, "distinct": 4000, "counted": 4000, "holes": [], "dead": 0}
    assert undisturbed.finished == {"stop": "success", "run": "success"}
    apps = spark_apps(endpoints)
    names = [a["name"] for a in apps["completedapps"] + apps["activeapps"]]
    assert f"tormenta-stream-{undisturbed.ns}_microbatch" in names  # on the standalone cluster, not in local mode
    assert apps["aliveworkers"] == 2
    results["undisturbed"] = undisturbed.timings


def test_batch_window_on_the_cluster_agrees_with_the_micro_batch_path(undisturbed, admin, hbase_endpoint, results):
    import datetime as dt

    from tormenta.batch import compare_social, resolve_window

    start = dt.datetime.fromtimestamp(undisturbed.started, tz=dt.UTC).replace(second=0, microsecond=0)
    end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    conf = {"window_start": (start - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%MZ"),
            "window_end": end.strftime("%Y-%m-%dT%H:%MZ"), "source_namespace": undisturbed.ns,
            "namespace": undisturbed.ns + "b", "parts": 2}  # fmt: skip
    t0 = time.monotonic()
    run = admin.trigger(BATCH, conf=conf)["dag_run_id"]
    final = admin.wait_for_run(BATCH, run, timeout=1200)
    results["batch_window_s"] = round(time.monotonic() - t0, 1)
    assert final["state"] == "success"
    w = resolve_window(conf["window_start"], conf["window_end"], dt.datetime.now(dt.UTC))
    conn = hbase_endpoint.connect()
    try:
        result = compare_social(conn, undisturbed.ns, undisturbed.ns + "b", w.start_ms, w.end_ms)
    finally:
        conn.close()
        from tormenta.schema import drop_namespace

        conn = hbase_endpoint.connect()
        drop_namespace(conn, undisturbed.ns + "b")
        conn.close()
    assert result["comments"] == {"micro_batch": 4000, "batch": 4000}
    assert result["agree"] is True, result["differences"]


# ------------------------------------------------------------------------------------ node kills

KILLS = {
    # node: how long it stays down
    "kafka2": 20,  # a broker: leaders move, acks=all with min ISR 2 goes on with the other two
    "spark-worker1": 5,  # an executor's host: its tasks are retried on the other worker
    "regionserver1": 30,  # its regions move to the other region server once its session expires
    "datanode1": 60,  # HDFS: the WAL pipelines and the checkpoints go on with the other DataNode
}


@pytest.mark.node_kill
@pytest.mark.parametrize("node", list(KILLS))
def test_a_node_killed_under_load_loses_nothing_and_doubles_nothing(node, cluster, admin, hbase_endpoint, results,
                                                                    request):  # fmt: skip
    # 6,000 comments at 20/s: 300 s of production, so the kill (once the first micro-batches are
    # stored, ~170 s after the trigger on 2 cores) comes while producers and the query still work
    run = Run(admin, hbase_endpoint, events=6000, rate_per_page=2).start()
    request.addfinalizer(run.drop)
    t0 = time.monotonic()
    run.wait_stored(1000, timeout=900)
    cluster.kill(node)
    t_kill = time.monotonic()
    stored_at_kill = run.stored()
    assert cluster.health()[node].startswith("exited")
    time.sleep(KILLS[node])
    cluster.start(node)
    cluster.wait_healthy(timeout=600, only=[node])
    back = time.monotonic() - t_kill
    run.wait_stored(6000, timeout=900)
    stored_at = time.monotonic() - t0
    finished = run.stop()
    check = run.check()
    stream = run.task("stream")
    results[f"kill_{node}"] = {"down_s": KILLS[node], "down_and_back_healthy_s": round(back, 1),
                               "all_stored_after_s": round(stored_at, 1), "whole_test_s": round(time.monotonic() - t0, 1),
                               "stored_at_kill": stored_at_kill, "stream_try": stream["try_number"], **check}  # fmt: skip
    assert stored_at_kill < 5000  # killed under load: most of the run was still to come
    assert check == {"stored": 6000, "distinct": 6000, "counted": 6000, "holes": [], "dead": 0}
    assert finished == {"stop": "success", "run": "success"}
    assert cluster.health()[node] == "healthy"
    if node == "spark-worker1":
        assert spark_apps(cluster.Endpoints.load())["aliveworkers"] == 2


def test_memory_under_load_is_recorded(cluster, admin, hbase_endpoint, results, request):
    """Memory per container while a run of 3,000 comments flows (a figure for the README, and a
    check that no container is near the 24 GiB of the machine)."""
    run = Run(admin, hbase_endpoint, events=3000).start()
    request.addfinalizer(run.drop)
    run.wait_stored(1000, timeout=900)
    load = cluster.memory()
    run.wait_stored(3000, timeout=600)
    run.stop()
    results["memory_load_mib"] = load
    assert sum(load.values()) < 16 * 1024
    assert wait_until("run stopped", lambda: admin.dag_run(MB, run.run_id)["state"] == "success", 60)


def test_a_user_signs_in_on_the_fab_page_and_sees_the_platforms_dags(cluster, endpoints, admin):
    """What a person sees: FAB's sign-in page, then Airflow's DAG list (screenshots in artifacts/)."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.browser import CHROMIUM_FLAGS, chromium_path, shoot

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"{endpoints.airflow_url}/dags")
            page.get_by_role("button", name="Sign In").wait_for(timeout=30_000)  # not signed in: FAB's page
            shoot(page, "cluster-fab-sign-in")
            page.locator("input[name=username]").fill("admin")
            page.locator("input[name=password]").fill(cluster.passwords()["admin"])
            page.get_by_role("button", name="Sign In").click()
            page.get_by_text("tormenta_microbatch", exact=True).first.wait_for(timeout=60_000)
            path = shoot(page, "cluster-dags")
            text = page.inner_text("body")
        finally:
            browser.close()
    assert path.stat().st_size > 10_000
    assert all(d in text for d in ("tormenta_batch", "tormenta_smoke", "tormenta_microbatch_stop"))
