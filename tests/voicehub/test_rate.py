"""Telling the agent's real sample rate from how fast its audio arrives."""

from __future__ import annotations

from webcall_widget.voicehub.rate import RateMeter, likely_rate

FRAME = 0.02


def stream(meter: RateMeter, rate: int, seconds: float, start: float = 0.0) -> None:
    """Agent audio paced in real time: 20 ms frames of ``rate`` Hz PCM16."""
    size = int(rate * FRAME) * 2
    for index in range(int(seconds / FRAME)):
        meter.feed(size, start + index * FRAME)


def test_audio_at_the_set_rate_matches():
    meter = RateMeter(16000)
    stream(meter, 16000, 2.0)
    assert meter.finding is not None and meter.finding.matches


def test_24khz_audio_while_16khz_is_set_looks_like_24khz():
    meter = RateMeter(16000)
    stream(meter, 24000, 2.0)
    assert meter.finding is not None and not meter.finding.matches
    assert meter.finding.likely == 24000
    assert meter.finding.describe().startswith("output sample rate looks like 24000 Hz")


def test_16khz_audio_while_24khz_is_set_looks_like_16khz():
    meter = RateMeter(24000)
    stream(meter, 16000, 2.0)
    assert meter.finding is not None and meter.finding.likely == 16000


def test_short_bursts_tell_nothing():
    meter = RateMeter(16000)
    for start in (0.0, 2.0, 4.0):
        stream(meter, 24000, 1.0, start)  # a second each, with pauses between
    assert meter.finding is None


def test_audio_far_faster_than_any_rate_is_described_as_such():
    meter = RateMeter(16000)
    for index in range(200):
        meter.feed(640 * 5, index * 0.01)  # five frames every 10 ms: bursting
    assert meter.finding is not None and meter.finding.likely is None
    assert "faster than real time" in meter.finding.describe()


def test_common_rates_snap_and_odd_ones_do_not():
    assert likely_rate(23100) == 24000
    assert likely_rate(28000) is None


def test_a_late_last_chunk_does_not_make_24khz_look_like_22khz():
    """Seen on a busy test machine: the run's last chunk 150 ms late."""
    meter = RateMeter(16000)
    stream(meter, 24000, 2.0)
    meter.feed(int(24000 * FRAME) * 2, 2.0 + 0.15)
    assert meter.finding is not None and meter.finding.likely == 24000


def test_chunks_that_arrive_in_bursts_after_stalls_still_read_24khz():
    """Every fifth chunk held up 60 ms and delivered with the next ones."""
    meter = RateMeter(16000)
    size = int(24000 * FRAME) * 2
    for index in range(100):
        at = index * FRAME
        meter.feed(size, at + 0.06 if index % 5 == 4 else at)
    assert meter.finding is not None and meter.finding.likely == 24000


def test_a_pause_between_two_sentences_does_not_slow_the_reading():
    """A greeting, a quarter second of nothing, then the answer."""
    meter = RateMeter(16000)
    stream(meter, 24000, 0.4)
    stream(meter, 24000, 2.0, start=0.4 + 0.25)
    assert meter.finding is not None and meter.finding.likely == 24000
