"""Who started a run or a spill folder, and whether it is gone (recovery after a kill).

Only an owner of this very process space (machine, boot, process namespace) whose process has
ended is gone; anything else — another machine or container, a live process, NULL or NaN from a
database column, a record that cannot be read — is not, and is never an error: a stray or
hand-edited owner must not stop a run from starting.
"""

from __future__ import annotations

import os

import pytest

from tests.support.processes import ended_pid
from w365etl.adapters.process_owners import describe_owner, is_gone, is_running_here, owner_record, process_space

pytestmark = pytest.mark.skipif(process_space() is None,
                                reason="no /proc here: a process space cannot be told, so nothing is ever gone")


def test_only_an_ended_process_of_this_process_space_is_gone():
    *space, pid = owner_record().split()
    ended = ended_pid()
    assert pid == str(os.getpid()) and len(space) == 3
    assert is_gone("\n".join([*space, ended]))
    assert not is_gone(owner_record())                                          # this process
    assert not is_gone("\n".join(["another-host", *space[1:], ended]))         # another machine
    assert not is_gone("\n".join([space[0], "another-boot", space[2], ended]))  # before a reboot
    assert not is_gone("\n".join([*space[:2], "pid:[1]", ended]))              # another container


@pytest.mark.parametrize("record", [None, float("nan"), "", "\n", "   ", "garbage", "2", "-1",
                                    "host boot ns ²", "host boot ns 99999999999999999999999", b"bytes", 12])
def test_a_record_that_cannot_be_read_is_not_gone_and_never_raises(record):
    assert is_gone(record) is False
    assert is_running_here(record) is False
    assert describe_owner(record)  # an operator still reads something


def test_only_a_live_process_of_this_process_space_is_running_here():
    """What ``w365etl mark-interrupted`` refuses to mark, even with --force."""
    *space, _ = owner_record().split()
    assert is_running_here(owner_record())
    assert not is_running_here("\n".join([*space, ended_pid()]))
    assert not is_running_here("\n".join(["another-host", *space[1:], str(os.getpid())]))
    assert not is_running_here("\n".join([*space[:2], "pid:[1]", str(os.getpid())]))


def test_an_owner_is_described_by_its_process_and_machine():
    assert describe_owner("host-a\nboot\npid:[4026531836]\n4242\n") == "process 4242 on host-a"
    assert describe_owner("4242") == "process 4242"
    assert "not recorded" in describe_owner(None)


def test_a_huge_process_number_of_this_space_is_not_gone():
    *space, _ = owner_record().split()
    assert is_gone("\n".join([*space, "9" * 30])) is False
    assert is_gone("\n".join([*space, "²"])) is False
    # more digits than int() converts (Python 3.11's limit is 4 300): still not gone, no error
    assert is_gone("\n".join([*space, "9" * 5000])) is False
    assert is_gone("\n".join(["another-host", "boot", "ns", "9" * 5000])) is False
    assert is_running_here("\n".join([*space, "9" * 5000])) is False
