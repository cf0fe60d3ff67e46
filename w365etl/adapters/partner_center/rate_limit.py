"""Throughput: stay well under Partner Center's limits instead of bouncing off them.

Partner Center throttles per partner tenant for some APIs and per partner + customer tenant for
others (429 with ``Retry-After``). We keep one token bucket for the partner and one per customer
(defaults 300 and 60 requests a minute — well under the ~500/min a partner is allowed), every
request takes a token from both, and a 429 blocks the bucket it concerns for ``Retry-After``
seconds so the other threads hold back too.

Buckets *reserve*: a caller takes its token at once (the level may go below zero) and is told how
long to wait, so callers are served first come, first served without a thundering herd. The clock
and the sleep are injected, which is how the unit tests run without sleeping.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

DEFAULT_PARTNER_PER_MINUTE = 300
DEFAULT_CUSTOMER_PER_MINUTE = 60


class TokenBucket:
    """``rate_per_minute`` tokens a minute, at most ``capacity`` saved up (the burst)."""

    def __init__(self, rate_per_minute: float, *, capacity: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive")
        self.rate_per_second = rate_per_minute / 60.0
        # default burst: ten seconds' worth, at least one request
        self.capacity = float(capacity) if capacity is not None else max(1.0, rate_per_minute / 6.0)
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = self.capacity
        self._updated = clock()
        self._blocked_until = -math.inf

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate_per_second)
        self._updated = now

    def reserve(self, tokens: float = 1.0) -> float:
        """Take ``tokens`` now; return the seconds the caller must wait before using them."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            self._tokens -= tokens
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate_per_second
            return max(wait, self._blocked_until - now, 0.0)

    def try_acquire(self, tokens: float = 1.0) -> bool:
        """Take ``tokens`` only if they are available right now (never waits)."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            if now < self._blocked_until or self._tokens < tokens:
                return False
            self._tokens -= tokens
            return True

    def block_for(self, seconds: float) -> None:
        """Nothing leaves this bucket for ``seconds`` (a 429's Retry-After)."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + max(0.0, seconds))

    @property
    def available(self) -> float:
        with self._lock:
            self._refill(self._clock())
            return self._tokens


class RateLimiter:
    """One bucket for the partner, one per customer tenant; thread-safe.

    ``acquire(customer)`` waits (with the injected ``sleep``) until both buckets allow one more
    request and returns the seconds waited. ``penalize(seconds, customer)`` honours a 429.
    ``None`` for a rate means no limit at that level.
    """

    def __init__(self, partner_per_minute: float | None = DEFAULT_PARTNER_PER_MINUTE,
                 customer_per_minute: float | None = DEFAULT_CUSTOMER_PER_MINUTE, *,
                 partner_burst: float | None = None, customer_burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._customer_per_minute = customer_per_minute
        self._customer_burst = customer_burst
        self._partner = (TokenBucket(partner_per_minute, capacity=partner_burst, clock=clock)
                         if partner_per_minute else None)
        self._customers: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()
        self._partner_blocked_until = -math.inf  # used when the partner level is unlimited

    @classmethod
    def unlimited(cls, **kwargs: Any) -> RateLimiter:
        return cls(None, None, **kwargs)

    def bucket_for(self, customer: str) -> TokenBucket | None:
        if not self._customer_per_minute:
            return None
        key = customer.casefold()
        with self._lock:
            bucket = self._customers.get(key)
            if bucket is None:
                bucket = TokenBucket(self._customer_per_minute, capacity=self._customer_burst, clock=self._clock)
                self._customers[key] = bucket
            return bucket

    def reserve(self, customer: str | None = None) -> float:
        """Take a token from the partner bucket (and the customer's); return the wait in seconds."""
        waits = [0.0]
        if self._partner is not None:
            waits.append(self._partner.reserve())
        else:
            waits.append(self._partner_blocked_until - self._clock())
        if customer:
            bucket = self.bucket_for(customer)
            if bucket is not None:
                waits.append(bucket.reserve())
        return max(waits)

    def acquire(self, customer: str | None = None) -> float:
        wait = self.reserve(customer)
        if wait > 0:
            self._sleep(wait)
        return wait

    def penalize(self, seconds: float, customer: str | None = None) -> None:
        """A 429 said "wait ``seconds``": block the customer's bucket, or the partner's."""
        bucket = self.bucket_for(customer) if customer else None
        if bucket is not None:
            bucket.block_for(seconds)
        elif self._partner is not None:
            self._partner.block_for(seconds)
        else:
            with self._lock:
                self._partner_blocked_until = max(self._partner_blocked_until, self._clock() + seconds)


class BoundedExecutor:
    """A thread pool that runs at most ``max_workers`` tasks and holds at most ``max_pending``
    more: ``submit`` blocks when full, so a huge batch never queues everything in memory."""

    def __init__(self, max_workers: int = 4, *, max_pending: int | None = None,
                 thread_name_prefix: str = "partner-center") -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers
        self._slots = threading.BoundedSemaphore(max_workers + (max_pending if max_pending is not None else max_workers))
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=thread_name_prefix)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        self._slots.acquire()
        try:
            future = self._pool.submit(fn, *args, **kwargs)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        return future

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)

    def __enter__(self) -> BoundedExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(wait=True)


def run_per_customer(fn: Callable[[K], T], customers: Iterable[K], *,
                     max_workers: int = 4) -> dict[K, T | BaseException]:
    """Run ``fn(customer)`` for each customer, at most ``max_workers`` at once.

    One customer's calls stay on one thread (in order); different customers run in parallel.
    Returns customer → result, or the exception it raised (one customer's failure never stops
    the others).
    """
    outcomes: dict[K, T | BaseException] = {}
    with BoundedExecutor(max_workers) as executor:
        futures = {customer: executor.submit(fn, customer) for customer in dict.fromkeys(customers)}
        for customer, future in futures.items():
            try:
                outcomes[customer] = future.result()
            except BaseException as error:  # noqa: BLE001 - handed back to the caller as a value
                outcomes[customer] = error
    return outcomes
