"""Webhook subscribers are served independently, against real HTTP receivers on loopback: a slow
or dead one costs one timeout per backoff period and never holds up the others' notifications."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hashdb.store.sqlite_store import SQLiteStore
from hashdb.trust import delivery
from support import principal, subscriber
from test_webhooks import share

N = 8


class TimedReceiver:
    """A loopback HTTP server answering 200 after `delay` seconds, each request on its own
    thread (a stalled endpoint still accepts connections), noting when each request arrived."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.arrivals: list[tuple[float, dict[str, str], bytes]] = []
        self.release = threading.Event()  # ends every pending delay at once (closing)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.arrivals.append((time.monotonic(), {k.lower(): v for k, v in self.headers.items()}, body))
                if receiver.delay:
                    receiver.release.wait(receiver.delay)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting and closed the connection

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def records(self) -> list[int]:
        return [json.loads(body)["hash"]["id"] for _, _, body in self.arrivals]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receivers():
    made: list[TimedReceiver] = []

    def make(delay: float = 0.0) -> TimedReceiver:
        made.append(TimedReceiver(delay))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def subscribe(service, fast_url: str, slow_url: str):
    admin = principal(service, "ops", "admin")
    contributor = principal(service, "a", "contributor")
    subscriber(service, "orgb")
    subscriber(service, "orgc")
    service.open_incident("attack-1", admin, "live stream")
    _, fast = service.add_webhook("orgb", fast_url, admin)
    _, slow = service.add_webhook("orgc", slow_url, admin)
    return admin, contributor, fast, slow


def test_a_stalled_subscriber_costs_one_timeout_and_the_others_get_every_record_at_once(make_service, receivers,
                                                                                       tmp_path):
    timeout = 1.0
    service = make_service(webhook_timeout_seconds=timeout, webhook_backoff_seconds=30, webhook_max_attempts=3)
    fast, slow = receivers(), receivers(delay=60)
    admin, contributor, fast_hook, slow_hook = subscribe(service, fast.url, slow.url)
    ids = [share(service, contributor, f"{n:032x}").ids[0] for n in range(1, N + 1)]

    # Two delivery passes at once, as two server workers (or a server and `hashdb webhook
    # deliver`) run them over one database: a subscriber is claimed by one pass at a time.
    other = SQLiteStore(tmp_path / "db0.sqlite")
    passes: list[delivery.DeliveryPass] = []

    def deliver(store) -> None:
        passes.append(delivery.deliver_due(store, service.server_secret, service.settings))

    began = time.monotonic()
    threads = [threading.Thread(target=deliver, args=(store,)) for store in (service.store, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.close()
    done = delivery.DeliveryPass(*(sum(getattr(p, f) for p in passes)
                                   for f in ("attempted", "delivered", "retrying", "failed")))
    # Sequential delivery alternated the two (fast 1, slow 1 timing out, fast 2, ...): the
    # healthy member got record k only after k - 1 timeouts, and the stalled one cost one
    # timeout per record. Now the stalled subscriber is tried once, then waits its backoff.
    assert sorted(fast.records()) == ids  # each once
    assert len(slow.arrivals) == 1
    assert fast.arrivals[-1][0] - began < 2 * timeout  # sent beside the stalled one, not after it
    assert (done.attempted, done.delivered, done.retrying, done.failed) == (N + 1, N, 1, 0)

    log = service.delivery_log(admin, limit=1000)
    [failure] = [a for a in log if a.webhook_id == slow_hook.id]
    assert failure.status_code is None and "timeout" in failure.error.lower()
    assert failure.record_id == ids[0]
    assert sorted(a.record_id for a in log if a.webhook_id == fast_hook.id and a.status_code == 200) == ids
    # Paused as a whole: the records it was not sent are not due before its backoff either.
    assert service.deliver_webhooks().attempted == 0
    assert len(slow.arrivals) == 1


def test_a_paused_subscriber_is_retried_after_its_backoff_and_catches_up(make_service, receivers):
    service = make_service(webhook_timeout_seconds=0.5, webhook_backoff_seconds=10, webhook_max_attempts=3)
    fast, slow = receivers(), receivers(delay=60)
    admin, contributor, _, slow_hook = subscribe(service, fast.url, slow.url)
    ids = [share(service, contributor, f"{n:032x}").ids[0] for n in range(1, 4)]
    t0 = datetime.now(timezone.utc) + timedelta(seconds=1)

    def deliver_at(offset: float):
        return delivery.deliver_due(service.store, service.server_secret, service.settings,
                                    now=lambda: t0 + timedelta(seconds=offset))

    assert deliver_at(0).retrying == 1                  # attempt 1 of record 1 times out: wait 10 s
    assert deliver_at(9.9).attempted == 0               # the whole subscriber waits, not just record 1
    second = deliver_at(10.1)                           # record 2's turn (never tried): times out, wait 20 s
    assert (second.attempted, second.retrying) == (1, 1)
    assert deliver_at(30.0).attempted == 0
    slow.delay = 0                                      # it answers again
    caught_up = deliver_at(30.2)
    assert (caught_up.attempted, caught_up.delivered) == (3, 3)
    assert service.store.delivery_states() == {"delivered": 2 * len(ids)}
    tried = [a for a in service.delivery_log(admin) if a.webhook_id == slow_hook.id]
    assert [(a.record_id, a.status_code) for a in tried] == [
        (ids[0], None), (ids[1], None), (ids[2], 200), (ids[0], 200), (ids[1], 200)]
    # A retry carries the same delivery id, for the subscriber to deduplicate on.
    by_record: dict[int, set[str]] = {}
    for _, headers, body in slow.arrivals:
        by_record.setdefault(json.loads(body)["hash"]["id"], set()).add(headers["x-hashdb-delivery"])
    assert all(len(seen) == 1 for seen in by_record.values()) and len(slow.arrivals) == 5


def test_the_background_worker_serves_a_fast_subscriber_while_a_slow_one_is_still_sending(make_service, receivers):
    # A slow subscriber that does answer (under the timeout) takes N * delay to drain; a
    # second submission meanwhile reaches the fast one without waiting for that.
    service = make_service(webhook_timeout_seconds=5)
    fast, slow = receivers(), receivers(delay=0.3)
    _, contributor, _, _ = subscribe(service, fast.url, slow.url)
    worker = delivery.start_background_delivery(service, interval=0.05)
    try:
        first = [share(service, contributor, f"{n:032x}").ids[0] for n in range(1, N + 1)]
        deadline = time.monotonic() + 60
        while not slow.arrivals and time.monotonic() < deadline:
            time.sleep(0.01)
        second = [share(service, contributor, f"{n:032x}").ids[0] for n in range(N + 1, 2 * N + 1)]
        while len(fast.arrivals) < 2 * N and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sorted(fast.records()) == first + second
        assert len(slow.arrivals) < N  # the slow one is still on the first submission
        while len(slow.arrivals) < 2 * N and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    assert sorted(slow.records()) == first + second
