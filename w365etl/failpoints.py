"""Named fail points: deliberate crashes at stage boundaries, switched on only by tests.

Business step: none — this is the reliability harness of every step. ``W365_FAILPOINTS``
names the points (comma-separated) where the run stops: ``raise`` (the default) raises
:class:`FailPointReached`; ``name=kill`` kills the process with SIGKILL, as a power cut would.
Unset, every call is one environment lookup and nothing else.

``FAILPOINTS`` lists every point, in the order a run reaches them; the crash matrix
(``tests/integration/test_crash_matrix.py``) kills a real run at each one, and a unit test
checks that each name is really called in the code. Points in ``PER_PROVIDER`` are reached once
per provider batch: ``name:<provider code>`` stops only at that provider's batch.
"""

from __future__ import annotations

import os
import signal

ENVIRONMENT_VARIABLE = "W365_FAILPOINTS"

#: every named point, in the order a run reaches them
FAILPOINTS = (
    "after_run_started",            # the run row exists; nothing of the plan yet
    "after_plan_stored",            # customers, contracts, orders and lines stored `planned`
    "after_cart_created",           # Partner Center: the cart exists and is journalled, not checked out
    "after_checkout",               # Partner Center: the order is placed, the journal not yet told
    "after_provider_call",          # the provider did its work; nothing of it recorded
    "before_marking_lines_done",    # inside the recording transaction: subscriptions written, lines not marked
    "after_recording_results",      # the batch's subscriptions, charges and line statuses committed
    "before_fulfilment",            # every batch recorded; orders not yet fulfilled (R7)
    "after_fulfilment",             # orders marked Fulfilled; no report written
    "while_writing_reports",        # summary.json and the csv files written, the workbook not
    "before_finish_run",            # every report written; the run not marked completed
    "after_finish_run",             # the run completed in the database; inbox not settled, no artifacts
)

#: points reached once per provider batch (``after_provider_call:partner_center``)
PER_PROVIDER = frozenset({"after_provider_call", "before_marking_lines_done", "after_recording_results"})


class FailPointReached(RuntimeError):
    """A test asked the run to stop here."""


def failpoint(name: str, qualifier: str | None = None) -> None:
    """Stop here when the point is named, alone or as ``name:qualifier`` (e.g. a provider code)."""
    wanted = os.environ.get(ENVIRONMENT_VARIABLE)
    if not wanted:
        return
    names = {name} if qualifier is None else {name, f"{name}:{qualifier}"}
    for item in wanted.split(","):
        point, _, action = item.strip().partition("=")
        if point in names:
            if action == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise FailPointReached(f"fail point {name} reached")
