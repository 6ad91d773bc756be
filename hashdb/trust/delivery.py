"""Sending the webhook outbox: each subscriber on its own, so a slow or dead one holds up nobody.

A sender claims a subscriber (a lease on its webhook row, so no other worker or `hashdb webhook
deliver` sends to it meanwhile), POSTs its due records one at a time in order, and releases it.
A failed attempt pauses the whole subscriber for its backoff, not just that record: a stalled
endpoint costs one timeout per backoff period instead of one per record, and its other records
wait for it to answer again. Subscribers are sent to in parallel, up to PARALLEL per process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol

from hashdb.config import Settings
from hashdb.store.base import HashStore
from hashdb.trust import webhooks
from hashdb.types import Delivery, Subscriber

log = logging.getLogger(__name__)

# Subscribers one process sends to at once. Threads here mostly wait on the network; the bound
# keeps a flood of dead endpoints from opening a thread each, and a dead one holds its slot for
# one timeout per backoff period at most.
PARALLEL = 8
# Due deliveries read at a time for one subscriber.
BATCH = 50
# A sender gives its subscriber back after this long (it is claimed again on the next tick),
# so a slow subscriber with a long backlog cannot keep a slot from the others for ever.
RUN_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class DeliveryPass:
    attempted: int
    delivered: int
    retrying: int
    failed: int

    def __add__(self, other: DeliveryPass) -> DeliveryPass:
        return DeliveryPass(self.attempted + other.attempted, self.delivered + other.delivered,
                            self.retrying + other.retrying, self.failed + other.failed)


NOTHING = DeliveryPass(0, 0, 0, 0)
# The longest wait between a record's attempts, and the most doublings of a subscriber's pause.
MAX_BACKOFF_S = 600.0
PAUSE_STEPS = 5


def backoff_seconds(attempt: int, settings: Settings) -> float:
    """Wait after failed attempt number `attempt` (1-based): doubling each time, at most
    MAX_BACKOFF_S."""
    return float(min(settings.webhook_backoff_seconds * 2 ** min(attempt - 1, 60), MAX_BACKOFF_S))


def pause_seconds(failures: int, settings: Settings) -> float:
    """How long a subscriber waits after `failures` failed attempts in a row: the same doubling,
    capped at PAUSE_STEPS doublings (32 s with the defaults), so a subscriber back after a long
    outage is found soon."""
    return backoff_seconds(max(1, min(failures, settings.webhook_max_attempts - 1, PAUSE_STEPS)), settings)


def _stamp(at: datetime) -> str:
    # The same form as the store's timestamps (rows.now()), so due times compare as text.
    return at.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Sender:
    """Claims subscribers and sends to them; one per pass or per background worker."""

    store: HashStore
    server_secret: bytes
    settings: Settings
    now: Callable[[], datetime] = field(default=_utcnow)

    def _lease(self) -> str:
        # Long enough for one attempt (http.client's timeout is per socket operation, so a
        # connect and a read may each take it); renewed after every attempt.
        return _stamp(self.now() + timedelta(seconds=self.settings.webhook_timeout_seconds * 2 + 30))

    def claim(self, limit: int, skip: Sequence[int] = ()) -> list[Subscriber]:
        return self.store.claim_subscribers(_stamp(self.now()), self._lease(), limit, skip)

    def run(self, subscriber: Subscriber, stop: threading.Event | None = None) -> DeliveryPass:
        """Send a claimed subscriber's due deliveries, oldest due first, until none is due, one
        fails (the subscriber then waits out its backoff), or the run's time is up."""
        done = NOTHING
        failures = subscriber.failures
        began = time.monotonic()
        while time.monotonic() - began < RUN_SECONDS and not (stop is not None and stop.is_set()):
            batch = self.store.due_deliveries(subscriber.webhook_id, _stamp(self.now()), BATCH)
            if not batch:
                break
            for delivery in batch:
                outcome, failures = self._send(subscriber, delivery, failures)
                done += outcome
                if failures:
                    return done  # paused by _send: no release
                if time.monotonic() - began >= RUN_SECONDS or (stop is not None and stop.is_set()):
                    break
        self.store.release_subscriber(subscriber.webhook_id, _stamp(self.now()))
        return done

    def _send(self, subscriber: Subscriber, delivery: Delivery, failures: int) -> tuple[DeliveryPass, int]:
        if delivery.record_status in ("retracted", "quarantined"):
            # Retracted or quarantined since it was queued: announcing it as an active
            # hash would have members block on a share its owner or the database withdrew (found
            # in trial: records retracted within a second still went out as "active"). Logged,
            # not sent; the subscriber's claim and failure count stay as they were.
            self.store.finish_delivery(delivery.id, _stamp(self.now()), None,
                                       f"not sent: the record is {delivery.record_status} now", 0, False, None,
                                       self._lease(), failures)
            return NOTHING, failures
        body = webhooks.with_labels(delivery.payload, delivery.record_labels).encode()
        timestamp = str(int(self.now().timestamp()))
        secret = webhooks.signing_secret(self.server_secret, subscriber.salt)
        headers = {
            webhooks.TIMESTAMP_HEADER: timestamp,
            webhooks.SIGNATURE_HEADER: webhooks.sign(secret, timestamp, body),
            webhooks.DELIVERY_HEADER: str(delivery.id),
        }
        began = time.monotonic()
        status, error = webhooks.post(subscriber.url, body, headers, self.settings.webhook_timeout_seconds,
                                      self.settings.webhook_allow_loopback)
        took = int((time.monotonic() - began) * 1000)
        ok = status is not None and 200 <= status < 300
        attempt = delivery.attempts + 1
        retry_at = None
        if not ok and attempt < self.settings.webhook_max_attempts:
            retry_at = _stamp(self.now() + timedelta(seconds=backoff_seconds(attempt, self.settings)))
        failures = 0 if ok else failures + 1
        hold = self._lease() if ok else _stamp(
            self.now() + timedelta(seconds=pause_seconds(failures, self.settings)))
        self.store.finish_delivery(delivery.id, _stamp(self.now()), status, error, took, ok, retry_at,
                                   hold, failures)
        return DeliveryPass(1, int(ok), int(retry_at is not None), int(not ok and retry_at is None)), failures


def deliver_due(store: HashStore, server_secret: bytes, settings: Settings,
                now: Callable[[], datetime] = _utcnow, parallel: int = PARALLEL) -> DeliveryPass:
    """One pass: every subscriber with a delivery due is served once, `parallel` at a time."""
    sender = Sender(store, server_secret, settings, now)
    done = NOTHING
    served: list[int] = []
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="hashdb-webhook") as pool:
        # Claimed a wave at a time, never more than can be sent at once: a claim waiting in a
        # queue could outlive its lease and be taken by another worker too.
        while wave := sender.claim(parallel, served):
            served.extend(s.webhook_id for s in wave)
            for outcome in pool.map(sender.run, wave):
                done += outcome
    return done


class Deliverer(Protocol):
    """What the delivery thread drives: HashDB, which makes a Sender over its store."""

    def webhook_sender(self) -> Sender: ...


class DeliveryWorker:
    """A daemon thread claiming due subscribers every `interval` seconds, as many as it has
    free senders, each sent to on a thread of its own until it is done or paused."""

    def __init__(self, service: Deliverer, interval: float = 2.0,
                 on_pass: Callable[[DeliveryPass], None] | None = None, parallel: int = PARALLEL) -> None:
        self.service = service
        self.interval = interval
        self.on_pass = on_pass  # told each run's counts (the server's metrics)
        self.parallel = parallel
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hashdb-webhooks", daemon=True)

    def start(self) -> DeliveryWorker:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        busy: set[Future[None]] = set()
        with ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="hashdb-webhook") as pool:
            while not self._stop.is_set():
                busy = {f for f in busy if not f.done()}
                try:
                    if len(busy) < self.parallel:
                        sender = self.service.webhook_sender()
                        for subscriber in sender.claim(self.parallel - len(busy)):
                            busy.add(pool.submit(self._serve, sender, subscriber))
                except Exception:  # the thread must outlive a bad poll (a locked or restarting database)
                    log.exception("webhook delivery poll failed; retrying in %.1f s", self.interval)
                self._stop.wait(self.interval)

    def _serve(self, sender: Sender, subscriber: Subscriber) -> None:
        try:
            done = sender.run(subscriber, self._stop)
            if self.on_pass is not None:
                self.on_pass(done)
        except Exception:  # its claim runs out and it is served again
            log.exception("webhook delivery to webhook %d failed", subscriber.webhook_id)


def start_background_delivery(service: Deliverer, interval: float = 2.0,
                              on_pass: Callable[[DeliveryPass], None] | None = None) -> DeliveryWorker:
    """For the server: deliver webhooks from background threads; call .stop() on shutdown."""
    return DeliveryWorker(service, interval, on_pass).start()
