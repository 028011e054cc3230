"""What the micro-batch DAG offers for geolocation (its trigger form's fields) and the ingestors it
runs for it: the HTTP endpoints phones post to, and the phone simulator posting to them."""

from __future__ import annotations

from typing import Any

from tormenta.contracts import topic_for
from tormenta.settings import load

from .contract import KIND

SOURCE_TITLE = "phones posting XY positions to the HTTP ingestors"
AVG_EVENT_BYTES = 330  # measured JSON size of a position
BASE_PORT = 8181


def params() -> dict[str, Any]:
    from airflow.sdk import Param

    return {
        "geo_endpoints": Param(1, type="integer", minimum=1, maximum=4, title="Geo HTTP ingestors",
                               description=f"Endpoints phones POST to (ports {BASE_PORT} and up, loopback)."),
        "geo_devices": Param(100, type="integer", minimum=1, maximum=20_000, title="Simulated phones",
                             description="Devices of the phone simulator."),
        "geo_rate": Param(100, type="number", minimum=1, maximum=100_000, title="Positions per second",
                          description="All phones together."),
    }  # fmt: skip


def ingestors(p: dict[str, Any], namespace: str) -> tuple[list[dict[str, Any]], float]:
    """The endpoints and the phone fleet of the Params ``p``, and the positions per second they send."""
    ports = [BASE_PORT + i for i in range(int(p["geo_endpoints"]))]
    host = load().geo_host  # where the endpoints listen and the phones post
    specs: list[dict[str, Any]] = [
        {"name": f"geo-http-{i + 1}", "module": "ingestors.runner", "pulls": False,
         "argv": ["geo-http", "--host", host, "--port", str(port), "--topic", topic_for(KIND, namespace)]}
        for i, port in enumerate(ports)
    ]  # fmt: skip
    specs.append({
        "name": "phones", "module": "ingestors.fleet", "pulls": False,
        "argv": ["--endpoints", ",".join(f"http://{host}:{port}" for port in ports),
                 "--devices", str(int(p["geo_devices"])), "--rate", f"{float(p['geo_rate']):g}", "--duration", "0"],
    })  # fmt: skip
    return specs, float(p["geo_rate"])
