from __future__ import annotations

from webcall_widget.sandbox.audio import tone
from webcall_widget.sandbox.vad import EnergyVad, SpeechEnded, SpeechStarted, VadConfig

RATE = 16000
FRAME = 640  # 20 ms
SILENCE = bytes(FRAME)
SPEECH = tone((300.0,), 0.02, RATE, level=0.2)


def feed(vad, *chunks, agent_talking=False):
    events = []
    for chunk, count in chunks:
        for _ in range(count):
            events += vad.feed(chunk, agent_talking=agent_talking)
    return events


def test_silence_is_not_speech():
    assert feed(EnergyVad(RATE), (SILENCE, 200)) == []


def test_speech_starts_after_start_ms_of_loud_frames():
    vad = EnergyVad(RATE)
    assert feed(vad, (SPEECH, 2)) == []
    assert feed(vad, (SPEECH, 1)) == [SpeechStarted()]


def test_a_blip_shorter_than_start_ms_is_ignored():
    assert feed(EnergyVad(RATE), (SPEECH, 2), (SILENCE, 50)) == []


def test_speech_ends_after_end_ms_of_quiet_and_keeps_the_utterance():
    vad = EnergyVad(RATE)
    events = feed(vad, (SILENCE, 20), (SPEECH, 50), (SILENCE, 30))
    assert events[0] == SpeechStarted()
    ended = events[1]
    assert isinstance(ended, SpeechEnded)
    # 1 s of speech and the 140 ms of silence before it (the 200 ms preroll holds the
    # 60 ms that started it), without the trailing silence
    assert abs(ended.seconds - 1.14) < 0.001
    assert len(ended.pcm) == round(ended.seconds * RATE) * 2


def test_a_short_pause_inside_speech_does_not_end_it():
    events = feed(EnergyVad(RATE), (SPEECH, 20), (SILENCE, 15), (SPEECH, 20))
    assert events == [SpeechStarted()]


def test_interrupting_the_agent_needs_longer_speech():
    vad = EnergyVad(RATE, VadConfig(start_ms=60, barge_in_ms=200))
    assert feed(vad, (SPEECH, 5), agent_talking=True) == []
    assert feed(vad, (SPEECH, 5), agent_talking=True) == [SpeechStarted()]


def test_very_long_speech_is_cut_into_utterances():
    vad = EnergyVad(RATE, VadConfig(max_utterance_ms=1000))
    events = feed(vad, (SPEECH, 60))
    assert isinstance(events[1], SpeechEnded)


def test_empty_frames_are_ignored():
    assert EnergyVad(RATE).feed(b"") == []
