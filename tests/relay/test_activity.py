from __future__ import annotations

from tests.clocks import HandClock
from webcall_widget.relay.activity import RECHECK_SECONDS, Activity
from webcall_widget.sandbox.audio import tone

SPEECH = tone((300.0, 450.0), 0.02, 16000, level=0.2)
HISS = tone((3000.0,), 0.02, 16000, level=0.005)
SILENCE = bytes(640)


def test_a_message_is_activity():
    clock = HandClock()
    activity = Activity(180, clock)
    clock.now += 50
    activity.message()
    assert activity.last == clock.now


def test_silence_and_hiss_are_not_activity():
    clock = HandClock()
    activity = Activity(180, clock)
    for _ in range(500):
        clock.now += 0.02
        activity.audio(SILENCE)
        activity.audio(HISS)
    assert activity.last == 100.0


def test_audible_audio_after_a_quiet_spell_is_activity():
    clock = HandClock()
    activity = Activity(180, clock)
    clock.now += RECHECK_SECONDS + 0.5
    activity.audio(SPEECH)
    assert activity.last == clock.now


def test_a_short_idle_timeout_looks_at_audio_more_often():
    assert Activity(2).recheck == 0.5
    assert Activity(180).recheck == RECHECK_SECONDS


def test_frames_within_a_second_of_activity_are_not_inspected():
    clock = HandClock()
    activity = Activity(180, clock)
    clock.now += RECHECK_SECONDS / 2
    activity.audio(SPEECH)
    assert activity.last == 100.0  # not moved: nothing was looked at
