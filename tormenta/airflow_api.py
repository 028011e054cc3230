"""A small client of Airflow 3's public REST API (``/api/v2``), used by the CLI and the e2e tests."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

TERMINAL_STATES = {"success", "failed"}


class AirflowApiError(RuntimeError):
    def __init__(self, status: int, body: str, url: str) -> None:
        super().__init__(f"HTTP {status} from {url}: {body[:500]}")
        self.status = status
        self.body = body


@dataclass
class AirflowClient:
    base_url: str
    username: str | None = None
    password: str | None = None
    _token: str | None = field(default=None, repr=False)

    def request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        url = self.base_url.rstrip("/") + path
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self.token()}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise AirflowApiError(exc.code, exc.read().decode(errors="replace"), url) from None
        return json.loads(raw) if raw else None

    def token(self) -> str:
        if self._token is None:
            if not self.username:
                raise AirflowApiError(401, "no credentials configured", self.base_url)
            doc = self.request(
                "POST", "/auth/token", {"username": self.username, "password": self.password}, auth=False
            )
            self._token = doc["access_token"]
        return self._token

    def dag(self, dag_id: str) -> dict:
        return self.request("GET", f"/api/v2/dags/{dag_id}")

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> dict:
        """Wait until the DAG processor has parsed ``dag_id`` (a new file takes one parse cycle)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.dag(dag_id)
            except AirflowApiError as exc:
                if exc.status != 404 or time.monotonic() > deadline:
                    raise
            time.sleep(2)

    def import_errors(self) -> list[dict]:
        return self.request("GET", "/api/v2/importErrors")["import_errors"]

    def set_paused(self, dag_id: str, paused: bool) -> dict:
        return self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": paused})

    def trigger(self, dag_id: str, conf: dict | None = None, run_id: str | None = None) -> dict:
        body: dict[str, Any] = {"logical_date": None, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        return self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")[
            "task_instances"
        ]

    def set_run_note(self, dag_id: str, run_id: str, note: str) -> Any:
        return self.request("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}?update_mask=note", {"note": note})

    def set_task_state(self, dag_id: str, run_id: str, task_id: str, state: str) -> Any:
        """Mark a task instance, as a user does from the UI (``failed``, ``success``)."""
        return self.request("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}",
                            {"new_state": state})  # fmt: skip

    def dag_runs(self, dag_id: str, states: list[str] | None = None) -> list[dict]:
        query = "".join(f"&state={s}" for s in states or [])
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100{query}")["dag_runs"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1) -> str:
        """The text of one try's task log (what the UI's log tab shows)."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        doc = self.request("GET", f"{path}?full_content=true&map_index={map_index}")
        content = doc.get("content", "")
        if not isinstance(content, list):
            return str(content)
        lines = []
        for line in content:  # structured log lines: the message, and an exception's type and text
            if not isinstance(line, dict):
                lines.append(str(line))
                continue
            lines.append(str(line.get("event", "")))
            for err in line.get("error_detail") or []:
                lines.append(f"{err.get('exc_type')}: {err.get('exc_value')}")
        return "\n".join(lines)

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600, on_change=None) -> dict:
        """Poll a run until it is success/failed; ``on_change(run)`` is called when its state moves."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            run = self.dag_run(dag_id, run_id)
            if run["state"] != last and on_change:
                on_change(run)
            last = run["state"]
            if last in TERMINAL_STATES:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id}/{run_id} still {last} after {timeout:.0f}s")
            time.sleep(2)


def local_client(username: str = "admin") -> AirflowClient:
    """A client for the local stack, logged in with the generated password of ``username``."""
    from tormenta.settings import load
    from tormenta.stack.airflow_setup import passwords_file

    s = load()
    passwords = json.loads(passwords_file(s).read_text())
    return AirflowClient(s.airflow_url, username, passwords[username])
