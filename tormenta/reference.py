"""Reference data for enrichment: politicians and parties, devices with driver/vehicle/city, zones.

These are the master rows the rules join to (a page's politician and party, a device's driver,
a position's zone); the simulators in ``ingestors/`` draw their pages, devices and cities from
the same definitions, so every simulated event has a row to enrich from. Generated deterministically and written with a fixed cell timestamp, so seeding again is a
no-op. The jobs never read HBase once per event: the executors look politicians and devices up
in batched gets cached for a minute, and the driver keeps the zones (one scan a minute).
"""

from __future__ import annotations

import json
import time
from typing import Any

from tormenta.cities import (
    CITIES,  # noqa: F401 (this module's API: city -> (lat_min, lat_max, lon_min, lon_max))
)
from tormenta.contracts import DEFAULT_NAMESPACE, table_name
from tormenta.geo import Zone
from tormenta.hbase import put_rows
from tormenta.schema import ensure_tables

SEED_TS = 1  # fixed cell timestamp: re-seeding overwrites identical cells

PARTIES = ["Partido Azul", "Partido Verde", "Partido Rojo", "Movimiento Naranja"]
POLITICIANS: dict[str, dict[str, str]] = {
    f"pol-{i:02d}": {
        "name": name,
        "party": PARTIES[i % len(PARTIES)],
        "handle": "@" + name.lower().replace(" ", "_"),
    }
    for i, name in enumerate(
        ["Ana Torres", "Luis Pardo", "Marta Gil", "Jorge Rey", "Elena Soto", "Pablo Vidal",
         "Sara Molina", "Diego Cano", "Lucia Prieto", "Carlos Ibarra"]  # fmt: skip
    )
}

ZONES_PER_SIDE = 3  # each city is cut into a 3 x 3 grid of zones


def zones() -> list[Zone]:
    out = []
    for city, (la0, la1, lo0, lo1) in sorted(CITIES.items()):
        dla, dlo = (la1 - la0) / ZONES_PER_SIDE, (lo1 - lo0) / ZONES_PER_SIDE
        for i in range(ZONES_PER_SIDE):
            for j in range(ZONES_PER_SIDE):
                out.append(Zone(f"{city}-{i}{j}", city, la0 + i * dla, la0 + (i + 1) * dla,
                                lo0 + j * dlo, lo0 + (j + 1) * dlo))  # fmt: skip
    return out


def devices(count: int = 2000) -> dict[str, dict[str, str]]:
    cities = sorted(CITIES)
    return {
        f"dev-{i:05d}": {
            "driver": f"driver-{i:05d}",
            "vehicle": ["sedan", "suv", "moto", "van"][i % 4],
            "city": cities[i % len(cities)],
        }
        for i in range(count)
    }


def seed(conn, device_count: int = 2000, namespace: str = DEFAULT_NAMESPACE) -> dict[str, int]:
    """Create the namespace's tables (``tormenta.schema``) and write the reference rows.
    Idempotent; returns row counts.

    Retry: safe; identical cells with the same fixed timestamp are overwritten.
    """
    ensure_tables(conn, namespace)

    def enc(d: dict[str, Any]) -> dict[bytes, bytes]:
        return {f"d:{k}".encode(): str(v).encode() for k, v in d.items()}

    pols = [(k.encode(), enc(v), SEED_TS) for k, v in POLITICIANS.items()]
    devs = [(k.encode(), enc(v), SEED_TS) for k, v in devices(device_count).items()]
    zs = [(z.zone_id.encode(), {b"d:json": json.dumps(z.__dict__, sort_keys=True).encode()}, SEED_TS)
          for z in zones()]  # fmt: skip
    return {
        table_name("ref_politicians", namespace): put_rows(conn, table_name("ref_politicians", namespace), pols),
        table_name("ref_devices", namespace): put_rows(conn, table_name("ref_devices", namespace), devs),
        table_name("ref_zones", namespace): put_rows(conn, table_name("ref_zones", namespace), zs),
    }


def ensure(endpoint, namespace: str = DEFAULT_NAMESPACE) -> ReferenceCache:
    """Create the namespace's tables and reference rows (idempotent) and return its cache."""
    with endpoint.session() as conn:
        seed(conn, namespace=namespace)
    return ReferenceCache(endpoint, namespace=namespace)


class ReferenceCache:
    """Driver-side copy of the zones, reloaded when older than ``ttl_s``: the geo rules compile
    them into a SQL expression. (Politicians and devices are read by the executors themselves,
    in batched, cached lookups of the JVM sink.)"""

    def __init__(self, endpoint, ttl_s: float = 60.0, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.endpoint = endpoint
        self.namespace = namespace
        self.ttl_s = ttl_s
        self._loaded_at = 0.0
        self.zones: list[Zone] = []

    def get(self) -> ReferenceCache:
        if time.monotonic() - self._loaded_at > self.ttl_s:
            self.reload()
        return self

    def reload(self) -> None:
        with self.endpoint.session() as conn:
            rows = conn.table(table_name("ref_zones", self.namespace)).scan(columns=[b"d:json"])
            self.zones = sorted((Zone(**json.loads(cells[b"d:json"])) for _, cells in rows),
                                key=lambda z: z.zone_id)  # fmt: skip
        self._loaded_at = time.monotonic()
