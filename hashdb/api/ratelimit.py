"""Per-key rate limit: a token bucket per API key, in this worker's memory.

With N gunicorn workers a key may reach up to N times the rate, since each worker keeps its
own buckets; set HASHDB_RATE_LIMIT with that in mind (or 0 to turn the limit off, e.g. behind
a proxy that limits already)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from hashdb.errors import RateLimited


class TokenBucket:
    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        self.burst = max(1.0, float(burst))
        self.clock = clock
        self._state: dict[object, tuple[float, float]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def _tokens(self, key: object, now: float) -> float:
        """Tokens `key` holds at `now`: what it had, refilled at `rate` up to `burst`. Caller holds the lock."""
        tokens, last = self._state.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate)

    def take(self, key: object) -> None:
        """Spend one token for `key`, or raise RateLimited with the seconds until the next."""
        if not self.enabled:
            return
        now = self.clock()
        with self._lock:
            tokens = self._tokens(key, now)
            if tokens < 1.0:
                self._state[key] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
                raise RateLimited(f"rate limit of {self.rate:g} requests/s for this key exceeded", int(wait) + 1)
            self._state[key] = (tokens - 1.0, now)

    def check(self, key: object) -> None:
        """Raise RateLimited if `key` has no token left, without spending one."""
        if not self.enabled:
            return
        with self._lock:
            tokens = self._tokens(key, self.clock())
            if tokens < 1.0:
                raise RateLimited(f"too many failed attempts; retry in {int((1.0 - tokens) / self.rate) + 1} s",
                                  int((1.0 - tokens) / self.rate) + 1)

    def charge(self, key: object) -> None:
        """Spend one token of `key` if it has one; never raises."""
        try:
            self.take(key)
        except RateLimited:
            pass
