"""Fleet simulator: N phones moving through the seeded cities, POSTing their positions.

    python -m ingestors.fleet --endpoints http://127.0.0.1:8181,http://127.0.0.1:8182 \
        --devices 500 --rate 2000 --duration 60

Devices are split over the endpoints by device number (the way phones would be balanced
over two ingestors). Each request carries the positions of one tick for the devices of one
endpoint; a failed request is retried with the same positions (same ids: stored once).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import signal
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass

from tormenta.reference import CITIES

log = logging.getLogger("tormenta.fleet")


@dataclass
class Phone:
    device_id: str
    lat: float
    lon: float
    heading: float
    speed_kmh: float
    trip: int = 0
    seq: int = 0

    def step(self, dt_s: float, rng: random.Random, bounds: tuple[float, float, float, float]) -> dict:
        la0, la1, lo0, lo1 = bounds
        self.heading += rng.uniform(-0.3, 0.3)
        self.speed_kmh = min(120.0, max(0.0, self.speed_kmh + rng.uniform(-5, 5)))
        d_m = self.speed_kmh / 3.6 * dt_s
        self.lat += d_m * math.cos(self.heading) / 111_320
        self.lon += d_m * math.sin(self.heading) / (111_320 * max(0.2, math.cos(math.radians(self.lat))))
        if not (la0 <= self.lat <= la1 and lo0 <= self.lon <= lo1):  # turn back into the city
            self.heading += math.pi
            self.lat, self.lon = min(max(self.lat, la0), la1), min(max(self.lon, lo0), lo1)
        if rng.random() < 0.002:
            self.trip += 1
        self.seq += 1
        return {"device_id": self.device_id, "trip_id": f"{self.device_id}-t{self.trip}", "seq": self.seq,
                "lat": round(self.lat, 6), "lon": round(self.lon, 6), "speed_kmh": round(self.speed_kmh, 2),
                "time": int(time.time() * 1000)}  # fmt: skip


def make_fleet(devices: int, seed: int = 11, first_seq: int | None = None) -> list[tuple[Phone, tuple]]:
    """Phones spread over the cities. Sequence numbers start at the current time in ms (unless
    ``first_seq``), as a phone's counter survives app restarts: a restarted simulator never
    reuses a position id (ticks are >= 50 ms apart, so the counter stays behind the clock).
    """
    rng = random.Random(seed)
    seq0 = int(time.time() * 1000) if first_seq is None else first_seq
    cities = sorted(CITIES)
    fleet = []
    for i in range(devices):
        bounds = CITIES[cities[i % len(cities)]]
        la0, la1, lo0, lo1 = bounds
        phone = Phone(f"dev-{i:05d}", rng.uniform(la0, la1), rng.uniform(lo0, lo1),
                      rng.uniform(0, 2 * math.pi), rng.uniform(10, 60), seq=seq0)  # fmt: skip
        fleet.append((phone, bounds))
    return fleet


def post(url: str, positions: list[dict], retries: int = 5) -> None:
    body = json.dumps(positions).encode()
    for attempt in range(retries):
        req = urllib.request.Request(url + "/v1/positions", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                resp.read()
                return
        except urllib.error.HTTPError as exc:
            if exc.code in (400, 401):  # malformed, or a token the endpoint does not accept: no retry helps
                raise ValueError(f"endpoint refused positions ({exc.code}): {exc.read()[:200]!r}") from None
            log.warning("POST failed (%s), retry %d", exc.code, attempt + 1)
        except OSError as exc:
            log.warning("POST failed (%s), retry %d", exc, attempt + 1)
        time.sleep(0.2 * 2**attempt)
    raise RuntimeError(f"{url}: positions not accepted after {retries} attempts")


def wait_for_endpoints(endpoints: list[str], timeout: float, stop: threading.Event) -> None:
    """Phones start before or after the ingestors: wait until every endpoint answers /health."""
    deadline = time.monotonic() + timeout
    for url in endpoints:
        while not stop.is_set():
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as resp:
                    resp.read()
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s: {exc}") from None
                stop.wait(1.0)


def run(endpoints: list[str], devices: int, rate: float, duration: float, seed: int = 11,
        stop: threading.Event | None = None, key: bytes | None = None) -> int:  # fmt: skip
    """Post ``rate`` positions/s in total for ``duration`` seconds (0: until ``stop``); returns
    positions accepted. With ``key``, each position carries its phone's token (as a provisioned
    phone would; this simulator posts for many phones, as a gateway does)."""
    from tormenta.devices import device_token

    fleet = make_fleet(devices, seed)
    tokens = {phone.device_id: device_token(key, phone.device_id) for phone, _ in fleet} if key else {}
    rng = random.Random(seed + 1)
    tick = max(0.05, devices / rate)  # every phone reports once per tick
    sent = 0
    start = time.monotonic()
    stop = stop or threading.Event()
    while not stop.is_set() and (not duration or time.monotonic() - start < duration):
        t0 = time.monotonic()
        groups: dict[str, list[dict]] = {e: [] for e in endpoints}
        for i, (phone, bounds) in enumerate(fleet):
            position = phone.step(tick, rng, bounds)
            if tokens:
                position["token"] = tokens[phone.device_id]
            groups[endpoints[i % len(endpoints)]].append(position)
        for url, positions in groups.items():
            for chunk in range(0, len(positions), 2000):
                post(url, positions[chunk : chunk + 2000])
                sent += len(positions[chunk : chunk + 2000])
        stop.wait(max(0.0, tick - (time.monotonic() - t0)))
    return sent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoints", required=True, help="comma-separated base URLs")
    p.add_argument("--devices", type=int, default=200)
    p.add_argument("--rate", type=float, default=1000, help="positions per second in total")
    p.add_argument("--duration", type=float, default=30, help="seconds (0: until SIGTERM)")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--wait-endpoints", type=float, default=120, help="seconds to wait for the endpoints")
    p.add_argument("--device-key-file", default=None, help="key of the per-device tokens (tormenta.devices)")
    p.add_argument("--no-device-tokens", action="store_true", help="post without tokens")
    args = p.parse_args(argv)
    from tormenta.devices import DeviceKeyError, load_key

    try:
        key = None if args.no_device_tokens else load_key(args.device_key_file)
    except DeviceKeyError as exc:
        log.error("CONFIG ERROR: %s", exc)
        return 78  # tormenta.failures.EXIT_FATAL: no retry can fix it
    logging.basicConfig(level=logging.INFO)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    endpoints = [e.rstrip("/") for e in args.endpoints.split(",")]
    wait_for_endpoints(endpoints, args.wait_endpoints, stop)
    sent = run(endpoints, args.devices, args.rate, args.duration, args.seed, stop, key)
    print(json.dumps({"positions_accepted": sent}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
