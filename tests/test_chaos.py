"""Chaos over real processes: the deployment page's site (two Uvicorn workers behind nginx
with docs/examples/nginx.conf, PostgreSQL, Redis, the VoiceHub sandbox in a process of its
own; tests/chaos.py) broken while visitors talk through it.

The visitors are tests/widget_client.py: the browser wire protocol over real sockets, with
the widget's rules for a socket that goes (resume with the token, the outbox, early audio).
Each test holds 20 or 40 calls: most are text calls (the echo agent), and a quarter are
voice-and-text calls (TextAudio) to the loopback agent, which plays every audio frame back
at once, so that every frame of agent audio the visitor misses is counted. Forty voice
calls would put most of this two-core machine's time into the visitors' own audio (50
frames a second each way, each through nginx and a worker); ten keep the audio path busy
on both workers and leave the workers the time the text calls need. The figures (the audio
gap, how long a call takes to move, how long a dead worker's line stays taken) are
``make bench-chaos``'s; these tests assert what must hold, with bounds far above those
figures.

The site's PostgreSQL and Redis are the tests' own (tests/postgres.py,
tests/redis_server.py), never the machine's shared servers: two tests restart them. The
module brings all it needs whatever ``WEBCALL_TEST_DB`` says, so ``make test`` runs it
once, in its PostgreSQL run (marker ``chaos``).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator

import pytest

from tests.chaos import MARKS, Backing, ChaosSite, Placed, Talk, figures, hush, speak_on
from tests.widget_client import Visitor

pytestmark = [*MARKS, pytest.mark.xdist_group("test_chaos"), pytest.mark.timeout(180)]

DRAIN_SECONDS = 3.0
# Uvicorn raises the signal again once it has shut down: a stop by SIGTERM exits with it.
STOPPED = (0, -signal.SIGTERM)
CHATS, VOICES = 15, 5  # 20 calls
LOST_WITHIN = 30.0  # the bound: lease lapse (15 s) and the next sweep (5 s)


@pytest.fixture(scope="module")
def site(backing: Backing, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosSite]:
    """VoiceHub lets a call be joined again (the sandbox's default, REJOIN "auto")."""
    with ChaosSite(backing, tmp_path_factory.mktemp("rejoin")) as running:
        yield running


@pytest.fixture(scope="module")
def refusing_site(
    backing: Backing, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChaosSite]:
    """VoiceHub refuses a second socket for a call (the no-rejoin variant, REJOIN "never"),
    and each agent has as many lines as the tests' calls."""
    with ChaosSite(
        backing,
        tmp_path_factory.mktemp("no-rejoin"),
        rejoin=False,
        drain_seconds=DRAIN_SECONDS,
        chat_lines=CHATS,
        voice_lines=VOICES,
    ) as running:
        yield running


async def talking(site: ChaosSite, chats: int, voices: int, *, tag: str) -> list[Talk]:
    """``chats`` text and ``voices`` voice visitors, each in a call and talking."""
    talks = [Talk(site.url, "chat", "text", f"{tag}c{n}") for n in range(chats)]
    talks += [Talk(site.url, "voice", "TextAudio", f"{tag}v{n}") for n in range(voices)]
    for batch in range(0, len(talks), 10):
        await asyncio.gather(*(talk.start() for talk in talks[batch : batch + 10]))
    return talks


async def hang_up(talks: list[Talk]) -> None:
    await asyncio.gather(*(talk.stop() for talk in talks))
    await asyncio.gather(
        *(talk.visitor.hang_up() for talk in talks if not talk.visitor.done.is_set())
    )


def assert_whole(site: ChaosSite, talks: list[Talk], since: float = 0.0) -> None:
    """Every conversation went on to the visitor's hang-up, and reads, for the visitor
    and in the database alike, as it was had: every message and its answer, once each, in
    order, none left half-written; no frame of agent audio came twice."""
    for talk in talks:
        visitor = talk.visitor
        stored = site.transcript(visitor.call_id)
        said = (
            f"{talk.timeline(since)}\nshown: {visitor.conversation()[-6:]}\nstored: {stored[-6:]}"
        )
        assert visitor.ended_reason == "visitor-ended", said
        assert not talk.unanswered, f"unanswered {talk.unanswered}: {said}"
        assert not visitor.partial(), said
        assert visitor.conversation() == talk.expected(), said
        assert [(role, text) for role, text, _ in stored] == talk.expected(), said
        assert all(final for _, _, final in stored), said
        assert visitor.audio.heard_twice == 0, said
    ended = site.wait_ended([t.visitor.call_id for t in talks], 10)
    assert {row["end_reason"] for row in ended.values()} == {"visitor-ended"}


def audio_after(talk: Talk, moment: float) -> int:
    """Frames of agent audio the visitor heard after ``moment``."""
    return sum(at > moment for at in talk.visitor.audio.heard.values())


def report(title: str, talks: list[Talk], since: float) -> None:
    moved = [t for t in talks if t.visitor.when("resumed")]
    back = [(t.visitor.when("resumed")[0] - since) * 1000 for t in moved]
    voices = [t for t in talks if t.voice]
    print(
        f"\n{title}: {len(moved)} of {len(talks)} calls moved, back after {figures(back)} ms "
        f"(min / median / max); agent audio missed per voice call "
        f"{figures([t.missing_audio_ms() for t in voices])} ms, longest silence "
        f"{figures([t.longest_silence_ms() for t in voices])} ms"
    )


# a worker killed


async def test_a_killed_worker_s_conversations_go_on_on_the_other_one(site):
    """SIGKILL (the out-of-memory killer, a host lost) during 20 calls. Typed messages are
    hushed at the kill (every visitor has their answer, and it is written): what a killed
    process held in memory and had not written, nobody has, and bench-chaos counts how
    often that costs a message. Audio flows all along."""
    assert site.workers is not None
    with site.both_workers_after():
        talks = await talking(site, CHATS, VOICES, tag="k")
        await asyncio.sleep(1.0)
        placed = await asyncio.to_thread(Placed.find, site, talks)
        on_killed, survivor = placed.by_worker[0], site.workers.health(1)
        assert len(on_killed) >= 5, "nginx spreads the calls over both workers"
        await hush(talks)
        killed_at = time.monotonic()
        await asyncio.to_thread(site.workers.kill, 0)
        speak_on(talks)
        for talk in on_killed:
            await talk.visitor.wait_for(lambda t=talk: t.visitor.when("resumed"), 20)
        await asyncio.sleep(2.0)
        for talk in on_killed:
            assert site.call(talk.visitor.call_id)["owner"] == survivor["process"]
            if talk.voice:
                assert audio_after(talk, talk.visitor.when("resumed")[0]) > 50
        await hang_up(talks)
        report("SIGKILL, rejoin", talks, killed_at)
        assert_whole(site, talks)


async def test_without_rejoins_a_killed_worker_s_calls_end_as_lost_and_free_their_lines(
    refusing_site,
):
    """Every agent line is taken; one worker is killed. Half of its visitors come back
    (their resume finds the call lost at once), the others never do (the sweepers end
    their calls once the worker's lease has lapsed). Within 30 s each of its calls is
    recorded ``relay-lost``, and from then on its line takes a new call."""
    site = refusing_site
    assert site.workers is not None
    with site.both_workers_after():
        talks = await talking(site, CHATS, VOICES, tag="n")
        assert await refused(site, "chat") == "agent_busy"  # every line is taken
        placed = await asyncio.to_thread(Placed.find, site, talks)
        on_killed, others = placed.by_worker[0], placed.by_worker[1]
        assert len(on_killed) >= 5
        for talk in on_killed[::2]:
            talk.visitor.comes_back = False
        await hush(talks)
        killed_at = time.monotonic()
        await asyncio.to_thread(site.workers.kill, 0)
        speak_on(talks)
        lost = [t.visitor.call_id for t in on_killed]
        rows = await asyncio.to_thread(site.wait_ended, lost, LOST_WITHIN)
        recorded_after = time.monotonic() - killed_at
        assert {(r["status"], r["end_reason"]) for r in rows.values()} == {
            ("failed", "relay-lost")
        }
        assert recorded_after < LOST_WITHIN
        for talk in on_killed:
            if talk.visitor.comes_back:
                assert talk.visitor.failure == "resume_failed", talk.visitor.name
                assert talk.visitor.ended_reason == "relay-lost", talk.visitor.name
        # each line is free: as many new calls as were lost start at once, and no more
        freed = {"chat": 0, "voice": 0}
        for talk in on_killed:
            freed["chat" if not talk.voice else "voice"] += 1
        newcomers = [
            Talk(site.url, slug, mode, f"new-{slug}{n}")
            for slug, mode in (("chat", "text"), ("voice", "TextAudio"))
            for n in range(freed[slug])
        ]
        await asyncio.gather(*(t.start() for t in newcomers))
        assert await refused(site, "chat") == "agent_busy"
        await hang_up([*others, *newcomers])
        assert_whole(site, [*others, *newcomers])
        print(f"\nSIGKILL, no rejoin: {len(lost)} calls recorded lost {recorded_after:.1f} s on")


async def refused(site: ChaosSite, slug: str) -> str:
    """The error code a new call to ``slug`` is refused with ('' if it started; it is
    ended at once then)."""
    visitor = Visitor(site.url, slug, "text" if slug == "chat" else "TextAudio")
    try:
        await visitor.start()
    except AssertionError:
        return visitor.failure
    await visitor.hang_up()
    return ""


# a rolling restart


async def test_a_rolling_restart_under_40_calls_loses_no_conversation(site):
    """A deploy: each worker in turn gets SIGTERM, is started again and serves (its
    /health/ready says so) before the other one goes. Visitors type and talk all along."""
    assert site.workers is not None
    talks = await talking(site, 30, 10, tag="r")
    began = time.monotonic()
    with site.both_workers_after():
        for index in range(2):
            assert await asyncio.to_thread(site.workers.restart_worker, index) in STOPPED
    await hang_up(talks)
    report("rolling restart, rejoin", talks, began)
    stayed = [t.timeline(began) for t in talks if not t.visitor.when("resumed")]
    assert not stayed, "every call moved at least once"
    assert_whole(site, talks, began)


async def test_without_rejoins_a_rolling_restart_cuts_no_call_before_drain_seconds(
    refusing_site,
):
    """Where VoiceHub refuses rejoins a stopping worker lets its calls run for
    DRAIN_SECONDS, then ends them as a server stop (the visitor is told, and may start
    again at once: that new call goes to a worker that is not stopping). Up to its end each
    call is whole, for its visitor and in the database."""
    site = refusing_site
    assert site.workers is not None
    everyone: list[Talk] = []
    tries: list[asyncio.Task[None]] = []

    def start_again_when_cut(talk: Talk) -> None:
        """The visitor clicks Try again as soon as their call is cut."""

        async def again() -> None:
            await talk.visitor.done.wait()
            await talk.stop()
            if talk.visitor.ended_reason == "relay-stopped":
                visitor = talk.visitor
                retry = Talk(site.url, visitor.slug, visitor.mode, f"{visitor.name}-again")
                everyone.append(retry)
                await retry.start()
                start_again_when_cut(retry)

        tries.append(asyncio.create_task(again()))

    with site.both_workers_after():
        everyone += await talking(site, CHATS, VOICES, tag="d")
        for talk in list(everyone):
            start_again_when_cut(talk)
        for index in range(2):
            in_calls = [t for t in everyone if not t.visitor.done.is_set()]
            on_stopping = (await asyncio.to_thread(Placed.find, site, in_calls)).by_worker[index]
            assert on_stopping
            stopped_at = time.monotonic()
            assert await asyncio.to_thread(site.workers.stop_worker, index) in STOPPED
            for talk in on_stopping:
                name = talk.visitor.name
                assert talk.visitor.ended_reason == "relay-stopped", name
                assert talk.visitor.when("ended")[0] - stopped_at >= DRAIN_SECONDS, name
                assert_whole_up_to_the_cut(site, talk)
            await asyncio.to_thread(site.workers.start_worker, index)
    for task in tries:
        task.cancel()
    await asyncio.gather(*tries, return_exceptions=True)
    survivors = [t for t in everyone if not t.visitor.done.is_set()]
    assert len(survivors) == CHATS + VOICES, "\n".join(
        t.timeline(0) + " " + t.visitor.failure for t in everyone
    )
    await hang_up(survivors)
    assert_whole(site, survivors)


def assert_whole_up_to_the_cut(site: ChaosSite, talk: Talk) -> None:
    """What the visitor of a call cut by a stopping worker was shown is what is stored,
    and reads as the conversation went up to the cut: the last message typed may have
    had no answer yet, or half of one (stored as not final), or not have gone out."""
    visitor = talk.visitor
    stored = site.transcript(visitor.call_id)
    assert stored == [(s.role, s.text, s.final) for s in visitor.view.values()], visitor.name
    said = [(role, text) for role, text, final in stored if final]
    expected = talk.expected()
    assert said in (expected, expected[:-1], expected[:-2]), visitor.name
