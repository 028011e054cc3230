"""Through the running Airflow API server: DAGs parse, a run reaches success, auth is enforced."""

import urllib.request

import pytest

from tormenta.airflow_api import AirflowApiError, AirflowClient, local_client

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def admin(stack):
    return local_client("admin")


def test_no_import_errors_in_the_running_airflow(admin):
    admin.wait_for_dag("tormenta_smoke")
    assert admin.import_errors() == []


def test_smoke_dag_run_succeeds_and_rows_land_in_hbase(admin, hbase):
    from tormenta.smoke import count_rows

    admin.wait_for_dag("tormenta_smoke")
    admin.set_paused("tormenta_smoke", False)
    run = admin.trigger("tormenta_smoke", conf={"events": 321})
    final = admin.wait_for_run("tormenta_smoke", run["dag_run_id"], timeout=600)
    states = {ti["task_id"]: ti["state"] for ti in admin.task_instances("tormenta_smoke", run["dag_run_id"])}
    assert final["state"] == "success", states
    assert states == {"produce": "success", "spark_kafka_to_hbase": "success", "verify": "success"}
    tag = "".join(ch if ch.isalnum() else "_" for ch in run["dag_run_id"])
    assert count_rows(hbase, tag) == 321


def test_param_schema_rejects_out_of_range(admin):
    with pytest.raises(AirflowApiError) as err:
        admin.trigger("tormenta_smoke", conf={"events": -5})
    assert err.value.status == 400
    assert "minimum" in err.value.body


def test_anonymous_requests_are_refused(stack):
    for path in ("/api/v2/dags", "/api/v2/connections", "/api/v2/dags/tormenta_smoke/dagRuns"):
        req = urllib.request.Request(stack.airflow_url + path)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 401, path


def test_wrong_password_gets_no_token(stack):
    client = AirflowClient(stack.airflow_url, "admin", "not-the-password")
    with pytest.raises(AirflowApiError) as err:
        client.token()
    assert err.value.status in (401, 403)


def test_viewer_can_read_but_not_trigger_or_read_connections(stack):
    viewer = local_client("viewer")
    assert viewer.dag("tormenta_smoke")["dag_id"] == "tormenta_smoke"
    with pytest.raises(AirflowApiError) as err:
        viewer.trigger("tormenta_smoke", conf={"events": 1})
    assert err.value.status == 403
    with pytest.raises(AirflowApiError) as err:
        viewer.request("GET", "/api/v2/connections/hbase_default")
    assert err.value.status == 403
