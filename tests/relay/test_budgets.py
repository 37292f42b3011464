"""The calls of one agent share the reads of its remaining budget."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import weakref

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from tests.clocks import HandClock
from tests.relay.fakes import make_call
from webcall_widget import limits
from webcall_widget.conf import get_settings
from webcall_widget.relay import records
from webcall_widget.relay.budgets import SharedBudgets, shared_budgets


class Reads:
    """A budget read that takes a moment and counts how often it ran."""

    def __init__(self, answer: float | None = 600.0, seconds: float = 0.01) -> None:
        self.answer = answer
        self.seconds = seconds
        self.count = 0
        self.fail = False

    async def __call__(self) -> float | None:
        self.count += 1
        await asyncio.sleep(self.seconds)
        if self.fail:
            raise RuntimeError("database gone")
        return self.answer


async def test_a_call_that_asks_as_the_read_completes_shares_its_answer():
    """The ask comes after the read is done and before its done callbacks have run (it
    got a KeyError: the answer was not stored yet)."""
    budgets = SharedBudgets()

    async def at_once() -> float:
        return 42.0

    first = asyncio.ensure_future(budgets.seconds_left("agent", at_once))
    await asyncio.sleep(0)  # the first ask starts the read
    second = asyncio.ensure_future(budgets.seconds_left("agent", at_once))  # runs after it
    answers = await asyncio.gather(first, second)
    assert list(answers) == [pytest.approx(42.0, abs=0.1)] * 2


async def test_calls_asking_at_once_share_one_read():
    budgets, reads = SharedBudgets(), Reads()
    answers = await asyncio.gather(*(budgets.seconds_left(7, reads) for _ in range(100)))
    assert reads.count == 1
    assert all(left is not None and 599 < left <= 600 for left in answers)


async def test_a_shared_answer_is_less_by_the_time_since_it_came():
    clock = HandClock()
    budgets, reads = SharedBudgets(clock=clock), Reads()
    assert await budgets.seconds_left(7, reads) == 600
    clock.now += 3
    assert await budgets.seconds_left(7, reads) == 597
    assert reads.count == 1


async def test_an_answer_older_than_the_sharing_time_is_read_again():
    clock = HandClock()
    budgets, reads = SharedBudgets(share_seconds=5, clock=clock), Reads()
    await budgets.seconds_left(7, reads)
    clock.now += 6
    reads.answer = 100.0
    assert await budgets.seconds_left(7, reads) == 100
    assert reads.count == 2


async def test_a_slow_read_is_joined_however_long_it_takes():
    budgets, reads = SharedBudgets(share_seconds=0.01), Reads(seconds=0.1)
    first = asyncio.create_task(budgets.seconds_left(7, reads))
    await asyncio.sleep(0.05)  # past the sharing time, the read still under way
    second = asyncio.create_task(budgets.seconds_left(7, reads))
    assert await first == pytest.approx(600, abs=1)
    assert await second == pytest.approx(600, abs=1)
    assert reads.count == 1


async def test_the_wait_for_a_read_is_not_taken_off_the_answer():
    """A read queued behind other database work is as fresh as when it comes back."""
    clock = HandClock()
    budgets = SharedBudgets(clock=clock)

    async def slow_read() -> float:
        clock.now += 20  # waiting for the database thread
        return 600.0

    assert await budgets.seconds_left(7, slow_read) == 600


def test_an_event_loop_that_ended_is_not_kept():
    loops = []

    async def ask() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        await shared_budgets().seconds_left(7, Reads())

    asyncio.run(ask())
    gc.collect()
    assert loops[0]() is None


async def test_each_agent_has_its_own_read():
    budgets, first, second = SharedBudgets(), Reads(600.0), Reads(None)
    assert await budgets.seconds_left(1, first) == pytest.approx(600, abs=1)
    assert await budgets.seconds_left(2, second) is None
    assert (first.count, second.count) == (1, 1)


async def test_a_failed_read_fails_its_askers_and_is_not_kept():
    budgets, reads = SharedBudgets(), Reads()
    reads.fail = True
    results = await asyncio.gather(
        budgets.seconds_left(7, reads), budgets.seconds_left(7, reads), return_exceptions=True
    )
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]
    reads.fail = False
    assert await budgets.seconds_left(7, reads) == pytest.approx(600, abs=1)
    assert reads.count == 2


async def test_a_caller_that_gives_up_does_not_cancel_the_read_for_the_others():
    budgets, reads = SharedBudgets(), Reads()
    quitter = asyncio.create_task(budgets.seconds_left(7, reads))
    stayer = asyncio.create_task(budgets.seconds_left(7, reads))
    await asyncio.sleep(0)
    quitter.cancel()
    assert await stayer == pytest.approx(600, abs=1)
    assert reads.count == 1


async def test_each_event_loop_has_its_own_shared_reads():
    here = shared_budgets()
    assert shared_budgets() is here
    other = await asyncio.to_thread(asyncio.run, _budgets_of_a_new_loop())
    assert other is not here


async def _budgets_of_a_new_loop() -> SharedBudgets:
    return shared_budgets()


@pytest.mark.django_db(transaction=True)
async def test_the_calls_of_one_agent_read_its_budget_from_the_database_once(agent_factory):
    agent = await database_sync_to_async(agent_factory)(max_call_minutes_per_day=10)
    other = await database_sync_to_async(agent_factory)()
    reads = []

    def counted(agent_id, settings):
        reads.append(agent_id)
        return limits.budget_seconds_left(agent_id, settings)

    recorder = records.DatabaseRecorder(get_settings(), read_budget=counted)
    calls = [make_call(agent_id=agent.pk) for _ in range(5)] + [make_call(agent_id=other.pk)]
    answers = await asyncio.gather(*(recorder.budget_seconds_left(call) for call in calls))
    assert sorted(reads) == [agent.pk, other.pk]
    assert [a and round(a) for a in answers] == [600] * 5 + [None]


@pytest.mark.django_db(transaction=True)
async def test_a_budget_read_before_midnight_is_not_used_after_it(agent_factory, monkeypatch):
    """Budgets are per UTC day: the answer of 23:59:58 says nothing about 00:00:01."""
    agent = await database_sync_to_async(agent_factory)(max_call_minutes_per_day=10)
    reads = []

    def counted(agent_id, settings):
        reads.append(timezone.now())
        return 5.0

    recorder = records.DatabaseRecorder(get_settings(), read_budget=counted)
    call = make_call(agent_id=agent.pk)
    late = dt.datetime(2026, 11, 25, 23, 59, 58, tzinfo=dt.UTC)
    for now in (late, late + dt.timedelta(seconds=3)):
        monkeypatch.setattr(timezone, "now", lambda now=now: now)
        await recorder.budget_seconds_left(call)
    assert len(reads) == 2
