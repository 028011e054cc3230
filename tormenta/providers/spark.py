"""``SparkJobOperator``: spark-submit of a job in ``spark_jobs/`` with the platform's defaults."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from typing import Any

from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from tormenta.settings import REPO_ROOT, load
from tormenta.spark_conf import code_archive, default_conf, is_local

# Airflow's task supervisor sends SIGKILL to the task process 5 s after its SIGTERM (the
# escalation of ``kill(SIGTERM, force=True)``); ``on_kill`` must be done before that.
ON_KILL_WAIT_SECONDS = 4.0


class ProcessGroupSparkSubmitHook(SparkSubmitHook):
    """The provider's hook, with ``spark-submit`` in its own process group.

    A PySpark driver is a JVM plus a Python process it starts; killing the JVM alone (what the
    provider does) can leave the Python driver running. Here a kill reaches the whole group:
    SIGTERM first (Spark's shutdown hooks run), SIGKILL after a grace period. A job that stops
    itself (``graceful``, the streaming job) is asked instead: SIGTERM to its Python driver.

    Spark's cores (``cores``): a ``local`` master becomes ``local[<cores>]`` when the connection is
    resolved, and ``--total-executor-cores`` is ``cores`` unless given (Spark ignores it on a
    local master). ``meter``: where to store the resource usage (see ``SparkJobOperator``).
    ``graceful``: the driver stops its query itself on SIGTERM.
    """

    def __init__(self, *, cores: int | None = None, graceful: bool = False,
                 meter: dict[str, Any] | None = None, **kwargs: Any) -> None:  # fmt: skip
        self.cores = cores
        self.graceful = graceful
        self.meter = meter
        self.fatal: str | None = None  # the job's own "FATAL:" line (tormenta.failures), if it printed one
        self.app_path = ""
        if cores and not kwargs.get("total_executor_cores"):
            kwargs["total_executor_cores"] = cores
        super().__init__(**kwargs)

    @property
    def master(self) -> str:
        """The master spark-submit is given: the connection's, with the cores rule applied."""
        return self._connection["master"]

    def _resolve_connection(self) -> dict[str, Any]:
        conn = super()._resolve_connection()
        if self.cores and is_local(conn["master"]):
            conn["master"] = f"local[{self.cores}]"
        return conn

    def submit(self, application: str = "", **kwargs: Any) -> str | None:
        kwargs.setdefault("start_new_session", True)
        self.app_path = application  # the Python driver's command line names it
        return super().submit(application, **kwargs)

    def _process_spark_submit_log(self, itr) -> None:
        """Runs while spark-submit runs (right after it started): measure its process group."""
        itr = self._watch_for_fatal(itr)
        if not self.meter or self._submit_sp is None:
            return super()._process_spark_submit_log(itr)
        from tormenta import resources
        from tormenta.stack import service_pids

        m = self.meter
        meter = resources.ResourceMeter(m["component"], pgid=self._submit_sp.pid,
                                        services=service_pids() if m["services"] else None).start()  # fmt: skip
        try:
            return super()._process_spark_submit_log(itr)
        finally:
            usage = meter.stop()
            self.log.info("resources of %s: %s", m["component"], usage.as_dict())
            try:
                from tormenta.providers.hbase import HBaseHook

                resources.store(HBaseHook().endpoint(), m["namespace"], m["dag_id"], m["run_id"], m["try_number"],
                                usage)  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - measuring must never fail the job
                self.log.warning("could not store resource usage: %s", exc)

    def _watch_for_fatal(self, itr):
        from tormenta.failures import FATAL_PREFIX, fatal_line

        for line in itr:
            if FATAL_PREFIX in str(line):
                self.fatal = fatal_line([str(line)])
            yield line

    def on_kill(self) -> None:
        proc = self._submit_sp
        if proc is None or proc.poll() is not None:
            return super().on_kill()
        if self.graceful and self._ask_driver_to_stop(proc):
            return
        self.log.info("Stopping spark-submit process group %s (SIGTERM)", proc.pid)
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(ON_KILL_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            self.log.warning("spark-submit did not stop in %ss: SIGKILL", ON_KILL_WAIT_SECONDS)
        _signal_group(proc.pid, signal.SIGKILL)  # whatever is left of the group
        super().on_kill()

    def _ask_driver_to_stop(self, proc: subprocess.Popen) -> bool:
        """SIGTERM to the Python driver only: it stops its query and exits, and the JVM with it.

        (A SIGTERM to the JVM would run Spark's shutdown hooks under the running query.) Returns
        False when there is no Python driver to ask. The driver ends itself within
        ``STOP_NOW_BOUND_S`` whatever happens, and also when this task's process is gone, so
        nothing is killed here even if the stop takes longer than Airflow waits for on_kill.
        """
        import psutil

        from tormenta.failures import STOP_NOW_BOUND_S

        drivers = []
        try:
            children = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            return False
        for child in children:
            with contextlib.suppress(psutil.Error):  # a zombie or a child that just ended
                if self.app_path and self.app_path in child.cmdline():
                    drivers.append(child)
        if not drivers:
            return False
        self.log.info("Asking the driver (pid %s) to stop its query now (SIGTERM)", [d.pid for d in drivers])
        for d in drivers:
            with contextlib.suppress(psutil.Error):
                d.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(ON_KILL_WAIT_SECONDS)
            self.log.info("The driver stopped its query and exited (spark-submit exit %s)", rc)
        except subprocess.TimeoutExpired:
            self.log.warning("The driver is still stopping; it ends itself within %ss of the request",
                             STOP_NOW_BOUND_S)  # fmt: skip
        return True


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


class SparkJobOperator(SparkSubmitOperator):
    """Run ``spark_jobs/<job>.py`` through ``spark-submit`` on connection ``spark_default``.

    * The Kafka connector jars are looked up when the task runs (never while the DAG file is
      parsed).
    * ``spark-submit`` receives an argument list built by the provider, never a shell string,
      so Param values cannot inject shell syntax.
    * Spark's cores come from the task's pool slots: a ``local[*]`` master becomes
      ``local[<pool_slots>]``, and ``--total-executor-cores`` is set to them (what a standalone
      master reads; a local one ignores it). The hook is the provider's, subclassed
      (``ProcessGroupSparkSubmitHook``) and built from the provider operator's own fields.
    * ``checkpoint_root=True`` appends ``--checkpoint-root`` with the deployment's checkpoint root
      (``TORMENTA_CHECKPOINT_ROOT``: a local folder, or hdfs://... on a cluster).
    * On a master that is not local, the jobs' code goes to the executors as a ``--py-files``
      zip (``tormenta.spark_conf.code_archive``), and the driver host comes from settings.
    * ``graceful_kill=True`` (a job that stops itself on SIGTERM, as the streaming job does): when
      the task is killed (marked failed or success, its run failed), only the Python driver gets
      a SIGTERM and stops its query; the rest of the group goes with it.
    * ``meter_namespace``: CPU-seconds and peak memory of the spark-submit process group (and,
      with ``meter_services``, the HBase servers' CPU during the job) go to
      ``<meter_namespace>_run_resources`` as component ``spark:<task_id>``.
    """

    template_fields = (*SparkSubmitOperator.template_fields, "meter_namespace", "task_slots")

    def __init__(self, *, job: str, conf: dict[str, Any] | None = None, checkpoint_root: bool = False,
                 meter_namespace: str | None = None, meter_services: bool = False, graceful_kill: bool = False,
                 task_slots: str | int | None = None, **kwargs: Any) -> None:  # fmt: skip
        if not job.isidentifier():
            raise ValueError(f"job must be a module name in spark_jobs/, got {job!r}")
        kwargs.setdefault("application", str(REPO_ROOT / "spark_jobs" / f"{job}.py"))
        kwargs.setdefault("name", f"tormenta-{job}")
        env = {"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
        env.update(kwargs.pop("env_vars", None) or {})
        super().__init__(conf=dict(conf or {}), env_vars=env, **kwargs)
        self.checkpoint_root = checkpoint_root
        self.meter_namespace = meter_namespace
        self.meter_services = meter_services
        self.graceful_kill = graceful_kill
        # Spark's task slots when the job needs more than its pool slots (cores): a real-time query
        # runs one long task per Kafka partition at once. Templated; empty: the pool slots.
        self.task_slots = task_slots
        self._meter: dict[str, Any] | None = None

    def _get_hook(self) -> SparkSubmitHook:
        """The provider's hook, built from the same operator fields as the provider's own
        ``_get_hook`` (a unit test holds this list to the hook's signature), as the subclass
        above, with the task's pool slots as Spark's cores."""
        slots = int(self.task_slots) if str(self.task_slots or "").strip() else self.pool_slots
        return ProcessGroupSparkSubmitHook(cores=slots, graceful=self.graceful_kill, meter=self._meter,
                                           **self.hook_kwargs())  # fmt: skip

    def hook_kwargs(self) -> dict[str, Any]:
        return {
            "conf": self.conf, "conn_id": self._conn_id, "files": self.files, "py_files": self.py_files,
            "archives": self._archives, "driver_class_path": self.driver_class_path, "jars": self.jars,
            "java_class": self._java_class, "packages": self.packages, "exclude_packages": self.exclude_packages,
            "repositories": self._repositories, "total_executor_cores": self._total_executor_cores,
            "executor_cores": self._executor_cores, "executor_memory": self._executor_memory,
            "driver_memory": self._driver_memory, "keytab": self.keytab, "principal": self.principal,
            "proxy_user": self.proxy_user, "name": self.name, "num_executors": self._num_executors,
            "status_poll_interval": self._status_poll_interval, "application_args": self.application_args,
            "env_vars": self.env_vars, "verbose": self._verbose, "spark_binary": self._spark_binary,
            "properties_file": self.properties_file, "yarn_queue": self._yarn_queue,
            "deploy_mode": self._deploy_mode, "use_krb5ccache": self._use_krb5ccache,
            "post_submit_commands": self.post_submit_commands,
            "track_driver_via_k8s_api": self._track_driver_via_k8s_api,
            "yarn_track_via_rm_api": self._yarn_track_via_rm_api, "yarn_rm_auth": self._yarn_rm_auth,
        }  # fmt: skip

    def execute(self, context: Any) -> None:
        """spark-submit the job; an exit the job marks as not retryable fails the task for good."""
        from airflow.sdk.exceptions import AirflowException, AirflowFailException

        from tormenta import failures

        self.prepare(context)
        try:
            return super().execute(context)
        except AirflowException as exc:
            hook = self._hook
            proc = getattr(hook, "_submit_sp", None)
            rc = proc.returncode if proc is not None else None
            if rc in failures.NOT_RETRIED:
                reason = getattr(hook, "fatal", None) or failures.NOT_RETRIED[rc]
                raise AirflowFailException(f"{reason} (spark-submit exit {rc}; not retried)") from exc
            raise

    def prepare(self, context: Any) -> None:
        """Jars, checkpoint root and resource metering, before the provider builds its command."""
        from tormenta import jvm

        if not self.jars:
            self.jars = ",".join(str(p) for p in jvm.spark_jar_paths())
        self.conf = {**default_conf(), **jvm.spark_classpath_conf(), **(self.conf or {})}
        if self.checkpoint_root and "--checkpoint-root" not in (self.application_args or []):
            self.application_args = [*(self.application_args or []), "--checkpoint-root", load().checkpoint_root]
        if self.meter_namespace:
            self._meter = {
                "component": f"spark:{self.task_id}", "services": self.meter_services,
                "namespace": self.meter_namespace, "dag_id": context["dag"].dag_id,
                "run_id": context["run_id"], "try_number": context["ti"].try_number,
            }  # fmt: skip
        hook = self._hook = self._get_hook()  # built after the arguments are final
        if not is_local(hook.master) and not self.py_files:
            self.py_files = str(code_archive())  # what the executors import
            self._hook = self._get_hook()
