"""One action in several threads at the same moment: the races the store must survive (two
upgrades of one database, runs opening a new database together)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def at_once(action: Callable[[], T], count: int, *, timeout: float = 120) -> tuple[list[T], list[BaseException]]:
    """Run ``action`` in ``count`` threads released together; what they returned and raised."""
    barrier = threading.Barrier(count)
    results: list[T] = []
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            results.append(action())
        except BaseException as error:  # noqa: BLE001 - handed to the test
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return results, errors
