"""One micro-batch DAG run on the cluster, observed from outside: the cluster tests' common part."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from tests.e2e.story import wait_until

MB, STOP, BATCH, SMOKE = "tormenta_microbatch", "tormenta_microbatch_stop", "tormenta_batch", "tormenta_smoke"


@dataclass
class Run:
    """A micro-batch run of ``events`` social comments (one ingestor, ten pages) in its own namespace."""

    admin: object
    hbase_endpoint: object
    events: int
    rate_per_page: int = 10
    ns: str = field(default_factory=lambda: "cl" + uuid.uuid4().hex[:8])
    run_id: str = ""
    started: float = 0.0
    timings: dict = field(default_factory=dict)

    def conf(self) -> dict:
        return {"namespace": self.ns, "interval": "PT2S", "sources": ["social"], "hot_pages": [],
                "ingestors_other_pages": 1, "rate_per_page": self.rate_per_page,
                "max_events_per_ingestor": self.events}  # fmt: skip

    def start(self) -> Run:
        self.started = time.time()
        self.run_id = self.admin.trigger(MB, conf=self.conf())["dag_run_id"]
        return self

    def stored(self) -> int:
        conn = self.hbase_endpoint.connect()
        try:
            return sum(1 for _ in conn.table(f"{self.ns}_social_comments").scan(columns=[b"d:batch"]))
        except Exception:  # noqa: BLE001 - the table is made by the run's prepare task
            return 0
        finally:
            conn.close()

    def wait_stored(self, n: int, timeout: float) -> float:
        t0 = time.monotonic()
        wait_until(f"{n} events of {self.ns} stored", lambda: self.stored() >= n, timeout, every=3)
        return time.monotonic() - t0

    def stop(self, timeout: float = 600) -> dict:
        stop = self.admin.trigger(STOP, conf={"namespace": self.ns})["dag_run_id"]
        final = self.admin.wait_for_run(STOP, stop, timeout=timeout)["state"]
        run = self.admin.wait_for_run(MB, self.run_id, timeout=timeout)
        return {"stop": final, "run": run["state"]}

    def task(self, task_id: str) -> dict:
        return next(t for t in self.admin.task_instances(MB, self.run_id) if t["task_id"] == task_id)

    def check(self) -> dict:
        """Everything stored once: event ids, per-minute counts, no hole, no dead letter."""
        from tests.integration.test_chaos import holes
        from tormenta.batch import social_minute_totals

        with self.hbase_endpoint.session() as conn:
            # row key "<salt>|<event_id>", event id "<page>-c<n>": n counts up per page from 0
            ids = [k.decode().split("|", 1)[1]
                   for k, _ in conn.table(f"{self.ns}_social_comments").scan(columns=[b"d:batch"])]  # fmt: skip
            counted = sum(v["comments"] for v in social_minute_totals(conn, self.ns, 0, 4_102_444_800_000).values())
            dead = sum(1 for _ in conn.table(f"{self.ns}_dead_letters").scan())
        return {"stored": len(ids), "distinct": len(set(ids)), "counted": counted, "holes": holes(ids)[:10],
                "dead": dead}  # fmt: skip

    def drop(self) -> None:
        """Stop the run if a failed test left it running (one active run per DAG: it would hold
        the next test's run queued), then drop the namespace's tables."""
        from tormenta.schema import drop_namespace

        if self.run_id and self.admin.dag_run(MB, self.run_id)["state"] not in ("success", "failed"):
            self.stop()

        with self.hbase_endpoint.session() as conn:
            drop_namespace(conn, self.ns)
