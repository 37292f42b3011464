from __future__ import annotations

from tests.clocks import HandClock
from webcall_widget.spacing import Spacing


def test_the_first_of_a_kind_is_always_due():
    assert Spacing(10, HandClock()).due("slow")


def test_a_second_within_the_interval_is_not_due_and_does_not_move_it():
    clock = HandClock()
    spacing = Spacing(10, clock)
    assert spacing.due("slow")
    clock.now += 6
    assert not spacing.due("slow")
    clock.now += 4  # ten seconds after the one let through, not after the one held back
    assert spacing.due("slow")


def test_kinds_are_spaced_apart_each_on_their_own():
    spacing = Spacing(10, HandClock())
    assert spacing.due("connection_slow")
    assert spacing.due("upstream_slow")
    assert not spacing.due("connection_slow")
