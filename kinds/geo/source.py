"""Mobile geolocation: the HTTP endpoint phones POST their position to (the source client).

    POST /v1/positions   body: one position or a JSON list of positions
      {"device_id": "dev-00042", "trip_id": "t-9", "seq": 17, "lat": 40.41, "lon": -3.70,
       "speed_kmh": 31.5, "time": 1764160000000, "token": "<the device's token>"}

With a device key (always, beyond loopback) every position carries its device's token
(``tormenta.devices``); a request with a missing or wrong one gets 401 and none of it is produced,
so a phone cannot post for another.

The event id is ``<device_id>-<seq>``, chosen by the phone, so a phone that retries a POST
produces the same ids and the pipeline stores them once. The endpoint answers only after Kafka
acknowledged every position of the request (200), so an acknowledged position is durable; a
malformed request gets 400 with the reason, a broker failure 503 (the phone retries).

The server has a bounded pool of workers and a socket timeout: a client that connects and sends
nothing holds a worker for ``request_timeout`` seconds at most, and when every worker and queue
slot is taken a new connection gets 503 at once instead of a new thread.
"""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from ingestors.producer import EventProducer
from ingestors.sources.base import Opened, envelope
from tormenta.devices import load_key, token_ok

from .contract import KIND

COMMAND = "geo-http"  # python -m ingestors.runner geo-http --port 8181
HELP = "HTTP endpoint phones POST positions to"
REPORT_SUCCESSES = True  # the endpoint answers each request once Kafka acknowledged it

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024
MAX_POSITIONS = 5000


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BadPosition(ValueError):
    pass


BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"


class BoundedHTTPServer(HTTPServer):
    """An HTTP server with ``workers`` threads and at most ``backlog`` more connections waiting."""

    def __init__(self, address, handler, workers: int = 32, backlog: int = 128) -> None:
        # the kernel's listen queue as deep as ours (socketserver's default is 5 connections)
        self.request_queue_size = max(5, workers + backlog)
        super().__init__(address, handler)
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="geo-http")
        self.slots = threading.BoundedSemaphore(workers + backlog)
        self._count = threading.Lock()
        self.in_use = 0  # connections being served or waiting for a worker

    def process_request(self, request, client_address) -> None:
        if not self.slots.acquire(blocking=False):
            try:
                request.sendall(BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        with self._count:
            self.in_use += 1
        self.pool.submit(self._work, request, client_address)

    def _work(self, request, client_address) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - one bad connection must not take the server down
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._count:
                self.in_use -= 1
            self.slots.release()

    def server_close(self) -> None:
        super().server_close()
        self.pool.shutdown(wait=False, cancel_futures=True)


def to_event(p: Any, source: str) -> dict[str, Any]:
    """A phone's position -> contract event (raises BadPosition with the reason)."""
    if not isinstance(p, dict):
        raise BadPosition("position must be a JSON object")
    for name, types in (("device_id", str), ("trip_id", str), ("seq", int), ("lat", (int, float)),
                        ("lon", (int, float)), ("speed_kmh", (int, float)), ("time", int)):  # fmt: skip
        v = p.get(name)
        if v is None:
            raise BadPosition(f"missing_field:{name}")
        if isinstance(v, bool) or not isinstance(v, types):
            raise BadPosition(f"wrong_type:{name}")
    if not p["device_id"].strip():
        raise BadPosition("empty_key:device_id")
    if p["seq"] < 0:  # "<device>-<seq>" is unique per device only for seq >= 0 ("a", -1 vs "a-", 1)
        raise BadPosition("negative:seq")
    event = envelope(KIND, f"{p['device_id']}-{p['seq']}", p["time"], source)
    event.update(device_id=p["device_id"], trip_id=p["trip_id"], lat=float(p["lat"]), lon=float(p["lon"]),
                 speed_kmh=float(p["speed_kmh"]))  # fmt: skip
    return event


class GeoHttpSource:
    """Threaded HTTP server on ``host:port`` producing every accepted position to Kafka."""

    kind = KIND

    def __init__(self, producer: EventProducer, host: str = "127.0.0.1", port: int = 8181,
                 name: str = "geo-http", ack_timeout: float = 30.0, request_timeout: float = 10.0,
                 workers: int = 32, backlog: int = 128, device_key: bytes | None = None) -> None:  # fmt: skip
        if not producer.reports_successes:
            raise ValueError("GeoHttpSource answers each POST on delivery: use EventProducer(report_successes=True)")
        if device_key is None and not is_loopback(host):
            raise ValueError(f"a geo endpoint on {host} (beyond loopback) needs device tokens: give it the device key")
        self.device_key = device_key
        self.producer = producer
        self.name = name
        self.ack_timeout = ack_timeout
        self.accepted = 0
        self.rejected = 0
        self._lock = threading.Lock()
        source = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = request_timeout  # socket timeout: idle or slow clients let go of their worker

            def log_message(self, fmt, *args):  # quiet: one line per request is too much
                pass

            def _reply(self, code: int, doc: dict) -> None:
                body = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802
                if self.path == "/health":
                    self._reply(200, {"status": "ok", "accepted": source.accepted, "rejected": source.rejected})
                else:
                    self._reply(404, {"error": "not found"})

            def do_POST(self):  # noqa: N802
                if self.path != "/v1/positions":
                    return self._reply(404, {"error": "not found"})
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    return self._reply(400, {"error": "Content-Length is not a number"})
                if length <= 0 or length > MAX_BODY:
                    return self._reply(413 if length > MAX_BODY else 400, {"error": "body size"})
                try:
                    doc = json.loads(self.rfile.read(length))
                    positions = doc if isinstance(doc, list) else [doc]
                    if len(positions) > MAX_POSITIONS:
                        raise BadPosition(f"at most {MAX_POSITIONS} positions per request")
                    events = [to_event(p, source.name) for p in positions]
                except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: deep nesting
                    with source._lock:
                        source.rejected += 1
                    reason = str(exc) if isinstance(exc, BadPosition) else "invalid_json"
                    return self._reply(400, {"error": reason})
                if source.device_key is not None:
                    impostor = next((p["device_id"] for p in positions
                                     if not token_ok(source.device_key, p["device_id"], p.get("token"))), None)  # fmt: skip
                    if impostor is not None:  # the whole request is refused: nothing of it is produced
                        with source._lock:
                            source.rejected += 1
                        return self._reply(401, {"error": f"bad_device_token:{impostor[:64]}"})
                ok, err = source.produce_and_wait(events)
                if not ok:
                    return self._reply(503, {"error": f"not acknowledged by Kafka: {err}"})
                self._reply(200, {"accepted": len(events)})

        self.server = BoundedHTTPServer((host, port), Handler, workers=workers, backlog=backlog)
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}/v1/positions"

    def produce_and_wait(self, events: list[dict[str, Any]]) -> tuple[bool, str | None]:
        """Produce ``events`` and wait for their acknowledgements (the poll thread serves them)."""
        done = threading.Event()
        state = {"left": len(events), "error": None}
        lock = threading.Lock()

        def on_delivery(err, _msg):
            with lock:
                if err is not None and state["error"] is None:
                    state["error"] = str(err)
                state["left"] -= 1
                if state["left"] == 0:
                    done.set()

        with self._lock:  # librdkafka is thread-safe; the lock keeps a request's records together
            for e in events:
                self.producer.send(KIND, e, on_delivery=on_delivery)
        if not done.wait(self.ack_timeout):
            return False, "timeout"
        if state["error"]:
            return False, state["error"]
        with self._lock:
            self.accepted += len(events)
        return True, None

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.2)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def add_arguments(parser) -> None:
    """The ``geo-http`` command's arguments (beside the runner's common ones)."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8181)
    parser.add_argument("--device-key-file", default=None,
                        help="key of the per-device tokens (default: $TORMENTA_GEO_DEVICE_KEY_FILE or "
                             "<TORMENTA_HOME>/secrets/geo-devices.key)")  # fmt: skip
    parser.add_argument("--no-device-tokens", action="store_true",
                        help="accept positions without tokens (refused beyond loopback)")  # fmt: skip


def open_source(args, name: str, producer: EventProducer) -> Opened:
    """The endpoint of ``args`` (a server: it sends what the phones post)."""
    key = None if args.no_device_tokens else load_key(args.device_key_file)
    return Opened(GeoHttpSource(producer, args.host, args.port, name=name, device_key=key))
