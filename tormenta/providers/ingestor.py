"""``IngestorOperator``: one long-running ingestor process, supervised by an Airflow task.

The task starts ``python -m <module> <argv>`` (an argument list, never a shell string) in its
own process group, streams its output into the task log and watches the run's control plane:

* stop requested (stop DAG, handover to a newer run, end of ``run_minutes``): SIGTERM, the
  ingestor flushes what it accepted and prints its report, the task succeeds;
* the process dies on its own (crash, ``kill -9``, Kafka not acknowledging): the task fails and
  Airflow retries it with exponential backoff; pulling sources resume from their saved position
  (``--state-file``), so what was not acknowledged is sent again;
* it cannot work (bad arguments: exit 2 or 78): the task fails at once, without retries;
* it fails while the run is stopping, or a retry finds the run stopping after a failed try: the
  task fails without retries. The failure is kept in the control plane (``c:failed:<name>``)
  until a try ends cleanly, so no later try can report the run's ingestion as a success;
* the task is killed (run marked failed, task cleared): the whole process group goes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from airflow.sdk import BaseOperator

from tormenta.contracts import DEFAULT_NAMESPACE
from tormenta.failures import NOT_RETRIED
from tormenta.settings import REPO_ROOT

STOP_GRACE_SECONDS = 60
POLL_SECONDS = 1.0
CONTROL_EVERY_SECONDS = 2.0
MODULES = ("ingestors.runner", "ingestors.fleet")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._\-]{0,80}$")


class IngestorError(RuntimeError):
    pass


def verdict(rc: int, stop_reason: str | None, module: str) -> str:
    """What an ingestor's exit means for its task: ``stopped`` (success), ``retry`` or ``fail``.

    A fleet of simulated phones may exit non-zero on SIGTERM; a runner must exit 0, which it
    does only when Kafka acknowledged everything it sent.
    """
    if rc == 0 or (stop_reason and module != "ingestors.runner"):
        return "stopped"
    if rc in NOT_RETRIED or stop_reason:
        return "fail"
    return "retry"


class IngestorOperator(BaseOperator):
    """Run and supervise one ingestor described by ``spec`` (see ``tormenta.microbatch.plan``).

    ``spec``: ``{"name": str, "module": "ingestors.runner" | "ingestors.fleet", "argv": [str],
    "pulls": bool}``; ``pulls`` sources get ``--state-file`` to resume after a crash.
    """

    template_fields = ("spec", "namespace")
    ui_color = "#d6eaf8"

    def __init__(self, *, spec: dict[str, Any], namespace: str = DEFAULT_NAMESPACE, kafka_conn_id: str = "kafka_default",
                 hbase_conn_id: str = "hbase_default", **kwargs: Any) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.spec = spec
        self.namespace = namespace
        self.kafka_conn_id = kafka_conn_id
        self.hbase_conn_id = hbase_conn_id
        self._proc: subprocess.Popen | None = None

    def command(self, bootstrap: str, state_dir: str) -> list[str]:
        spec = self.spec
        name, module, argv = spec["name"], spec["module"], [str(a) for a in spec["argv"]]
        if not NAME_RE.match(name):
            raise IngestorError(f"bad ingestor name {name!r}")
        if module not in MODULES:
            raise IngestorError(f"module {module!r} is not an ingestor ({', '.join(MODULES)})")
        cmd = [sys.executable, "-m", module, *argv]
        if module == "ingestors.runner":
            cmd += ["--bootstrap", bootstrap, "--name", name, "--control-file", self.control_file(state_dir)]
            if spec.get("pulls"):
                cmd += ["--state-file", os.path.join(state_dir, f"{name}.json")]
        return cmd

    def control_file(self, state_dir: str) -> str:
        """Where this task passes the run's control plane on to its ingestor (storms on demand)."""
        return os.path.join(state_dir, f"{self.spec['name']}.control.json")

    @staticmethod
    def pass_on(path: str, storms: list[dict[str, Any]]) -> None:
        """Write what the running ingestor reads from its control file (atomically)."""
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            json.dump({"storms": storms}, fh)
        os.replace(tmp, path)

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from tormenta.control import ControlPlane
        from tormenta.providers.hbase import HBaseHook
        from tormenta.providers.kafka import bootstrap_servers
        from tormenta.settings import load

        name = self.spec["name"]
        run_id = context["run_id"]
        control = ControlPlane(HBaseHook(self.hbase_conn_id).endpoint(), self.namespace)
        if control.stop_reason(run_id):
            failure = control.state(run_id)["failed"].get(name)
            control.mark_stopped(run_id, name, {"rc": None, "started": False, "failed_before": failure})
            if failure:
                raise AirflowFailException(
                    f"ingestor {name} failed on a previous try ({json.dumps(failure, sort_keys=True)}) and the "
                    "run is stopping, so it is not restarted: what it sent after its last saved position may "
                    "not all be in Kafka. The next run of this pipeline resumes from that position.")  # fmt: skip
            self.log.info("stop already requested for this run: ingestor %s does not start", name)
            return {"name": name, "started": False}

        bootstrap = bootstrap_servers(self.kafka_conn_id)
        state_dir = str(load().home / "ingestors" / self.namespace)
        cmd = self.command(bootstrap, state_dir)
        storms = control.state(run_id)["storms"]
        if self.spec["module"] == "ingestors.runner":
            self.pass_on(self.control_file(state_dir), storms)  # before it starts: a storm blowing already
        self.log.info("starting ingestor %s: %s", name, cmd)
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      start_new_session=True, env=env, cwd=str(REPO_ROOT))  # fmt: skip
        from tormenta import resources

        meter = resources.ResourceMeter(f"ingestor:{name}", pgid=self._proc.pid).start()
        report: dict[str, Any] = {}
        reader = threading.Thread(target=self._pump, args=(self._proc, report), daemon=True)
        reader.start()
        self.log.info("ingestor %s running as pid %s (process group %s)", name, self._proc.pid, self._proc.pid)

        stop_reason = None
        last_check = 0.0
        while self._proc.poll() is None:
            time.sleep(POLL_SECONDS)
            if time.monotonic() - last_check >= CONTROL_EVERY_SECONDS:
                last_check = time.monotonic()
                try:
                    state = control.state(run_id)
                    stop_reason = state["stop"]
                    if state["storms"] != storms and self.spec["module"] == "ingestors.runner":
                        storms = state["storms"]
                        self.log.info("storms of the run: %s: passed on to ingestor %s", storms, name)
                        self.pass_on(self.control_file(state_dir), storms)
                except Exception as exc:  # noqa: BLE001 - HBase briefly away: keep ingesting
                    self.log.warning("control plane not readable (%s); checking again", exc)
                if stop_reason:
                    self.log.info("stop requested (%s): SIGTERM to ingestor %s", stop_reason, name)
                    self._stop(signal.SIGTERM)
                    break
        rc = self._proc.wait()
        reader.join(10)
        usage = meter.stop()
        try:
            resources.store(control.endpoint, self.namespace, context["dag"].dag_id, run_id,
                            context["ti"].try_number, usage)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - measuring must never fail the ingestor
            self.log.warning("could not store resource usage: %s", exc)
        outcome = {"name": name, "rc": rc, "report": report.get("last"), "stop": stop_reason}
        what = verdict(rc, stop_reason, self.spec["module"])
        if what == "stopped":
            control.clear_failure(run_id, name)
            control.mark_stopped(run_id, name, outcome)
            self.log.info("ingestor %s stopped: %s", name, outcome)
            return outcome
        control.mark_failed(run_id, name, outcome)
        if what == "retry":
            raise IngestorError(f"ingestor {name} died with exit code {rc} (retried by Airflow); "
                                f"report: {report.get('last')}")  # fmt: skip
        if stop_reason:
            control.mark_stopped(run_id, name, outcome)  # gone: the ordered stop goes on without it
            raise AirflowFailException(f"ingestor {name} did not stop cleanly (exit {rc}): not every record it "
                                       f"sent was acknowledged by Kafka; report: {report.get('last')}")  # fmt: skip
        raise AirflowFailException(f"ingestor {name} cannot run: {NOT_RETRIED[rc]} (exit {rc}), not "
                                   f"retried; report: {report.get('last')}")  # fmt: skip

    def _pump(self, proc: subprocess.Popen, report: dict[str, Any]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            self.log.info("[%s] %s", self.spec["name"], line)
            if line.startswith("{"):
                try:
                    report["last"] = json.loads(line)
                except ValueError:
                    pass

    def _stop(self, sig: int) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
            proc.wait(STOP_GRACE_SECONDS)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            self.log.warning("ingestor did not stop in %ss: SIGKILL", STOP_GRACE_SECONDS)
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything left in the group
        except ProcessLookupError:
            pass

    def on_kill(self) -> None:
        self._stop(signal.SIGTERM)
