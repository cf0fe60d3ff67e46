"""Token buckets per partner and per customer, on a fake clock: nothing sleeps, nothing is timed."""

from __future__ import annotations

import threading

import pytest

from w365etl.adapters.partner_center.rate_limit import (
    BoundedExecutor,
    RateLimiter,
    TokenBucket,
    run_per_customer,
)


class FakeClock:
    """``clock()`` reads the time; ``sleep(s)`` records the wait and moves time forward."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_a_bucket_serves_its_burst_then_one_token_per_interval():
    clock = FakeClock()
    bucket = TokenBucket(60, capacity=3, clock=clock)  # one a second, three saved up
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve() == pytest.approx(1.0)
    assert bucket.reserve() == pytest.approx(2.0)  # reservations queue up behind each other
    clock.advance(2.0)
    assert bucket.reserve() == pytest.approx(1.0)


def test_a_bucket_refills_up_to_its_capacity_only():
    clock = FakeClock()
    bucket = TokenBucket(120, capacity=2, clock=clock)
    assert bucket.try_acquire() and bucket.try_acquire()
    assert not bucket.try_acquire()
    clock.advance(0.5)  # 120/min = 2/s → one token back
    assert bucket.try_acquire()
    clock.advance(3600)
    assert bucket.available == pytest.approx(2.0)


def test_the_default_burst_is_ten_seconds_of_traffic():
    assert TokenBucket(300).capacity == 50
    assert TokenBucket(60).capacity == 10
    assert TokenBucket(3).capacity == 1


def test_a_customer_is_limited_without_slowing_the_others():
    clock = FakeClock()
    limiter = RateLimiter(300, 60, customer_burst=2, clock=clock, sleep=clock.sleep)
    assert limiter.acquire("tenant-a") == 0.0
    assert limiter.acquire("TENANT-A") == 0.0  # tenant ids compare case-insensitively
    assert limiter.acquire("tenant-a") == pytest.approx(1.0)
    assert clock.sleeps == [pytest.approx(1.0)]
    assert limiter.acquire("tenant-b") == 0.0


def test_the_partner_bucket_caps_all_customers_together():
    clock = FakeClock()
    limiter = RateLimiter(60, 600, partner_burst=2, clock=clock, sleep=clock.sleep)
    waits = [limiter.reserve(f"tenant-{index}") for index in range(4)]
    assert waits == [0.0, 0.0, pytest.approx(1.0), pytest.approx(2.0)]


def test_a_429_blocks_the_customer_for_retry_after():
    clock = FakeClock()
    limiter = RateLimiter(300, 60, clock=clock, sleep=clock.sleep)
    limiter.penalize(30, "tenant-a")
    assert limiter.acquire("tenant-a") == pytest.approx(30.0)
    assert limiter.acquire("tenant-b") == 0.0
    assert limiter.acquire("tenant-a") == 0.0  # the clock moved past the block while waiting


def test_a_429_without_customer_blocks_the_partner():
    clock = FakeClock()
    limiter = RateLimiter(300, 60, clock=clock, sleep=clock.sleep)
    limiter.penalize(5)
    assert limiter.reserve("tenant-a") == pytest.approx(5.0)
    unlimited = RateLimiter.unlimited(clock=clock, sleep=clock.sleep)
    assert unlimited.acquire("tenant-a") == 0.0
    unlimited.penalize(4)
    assert unlimited.reserve() == pytest.approx(4.0)


def test_buckets_are_thread_safe():
    clock = FakeClock()  # time stands still: only the saved-up tokens can be taken
    bucket = TokenBucket(60, capacity=250, clock=clock)
    taken: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(100):
            result = bucket.try_acquire()
            with lock:
                taken.append(result)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert taken.count(True) == 250


def test_concurrent_reservations_each_get_their_own_slot():
    clock = FakeClock()
    bucket = TokenBucket(60, capacity=1, clock=clock)
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        wait = bucket.reserve()
        with lock:
            waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(round(wait, 6) for wait in waits) == [float(index) for index in range(10)]


def test_the_executor_never_runs_more_than_max_workers_at_once():
    active = 0
    peak = 0
    lock = threading.Lock()
    barrier = threading.Barrier(3, timeout=10)  # proves three really run together

    def task(_: int) -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        barrier.wait()
        with lock:
            active -= 1

    with BoundedExecutor(3, max_pending=1) as executor:
        futures = [executor.submit(task, index) for index in range(9)]
        for future in futures:
            future.result()
    assert peak == 3


def test_run_per_customer_hands_back_results_and_failures():
    def provision(customer: str) -> str:
        if customer == "bad":
            raise ValueError("refused")
        return customer.upper()

    outcomes = run_per_customer(provision, ["a", "bad", "b", "a"], max_workers=2)
    assert outcomes["a"] == "A" and outcomes["b"] == "B"
    assert isinstance(outcomes["bad"], ValueError)
    assert list(outcomes) == ["a", "bad", "b"]


def test_rates_must_be_positive():
    with pytest.raises(ValueError):
        TokenBucket(0)
    with pytest.raises(ValueError):
        BoundedExecutor(0)
