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
tests/redis_server.py), never the machine's shared servers: three tests restart them (what
a restart of each costs is in docs/deployment.md, "When PostgreSQL or Redis restarts"). The
module brings all it needs whatever ``WEBCALL_TEST_DB`` says, so ``make test`` runs it
once, on its own after the PostgreSQL run (marker ``chaos``).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.chaos import (
    MARKS,
    Backing,
    ChaosSite,
    Placed,
    Talk,
    both_workers_after,
    figures,
    hang_up,
    hush,
    speak_on,
    talking,
)
from tests.postgres import Cluster, answers
from tests.redis_server import RedisServer
from tests.widget_client import FRAME_MS, Visitor
from webcall_widget import leases
from webcall_widget.relay.process import RENEW_SECONDS
from webcall_widget.relay.protocol import CloseCode

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
    with both_workers_after(site):
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
    with both_workers_after(site):
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
    with both_workers_after(site):
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

    with both_workers_after(site):
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


# PostgreSQL and Redis restarted

DOWN_SECONDS = 3.0


def outage_report(title: str, talks: list[Talk], outage: tuple[float, float]) -> None:
    """What the visitors went through while a server was down."""
    texts = [t for t in talks if not t.voice]
    voices = [t for t in talks if t.voice]
    print(
        f"\n{title}: down {outage[1] - outage[0]:.1f} s; answers while down per text call "
        f"{figures([t.answered_between(*outage) for t in texts])}, longest wait for an answer "
        f"{figures([t.longest_wait_ms() for t in talks])} ms; agent audio heard while down "
        f"per voice call {figures([t.heard_between(*outage) * FRAME_MS for t in voices])} ms, "
        f"longest silence {figures([t.longest_silence_ms() for t in voices])} ms, missed "
        f"{figures([t.missing_audio_ms() for t in voices])} ms (min / median / max)"
    )


async def restart_while_probed(site: ChaosSite, server: Cluster | RedisServer) -> list[Any]:
    """Restart ``server``, down for DOWN_SECONDS: each worker's readiness halfway through,
    as a probe sees it; back once both say they are ready again."""
    assert site.workers is not None
    restarting = asyncio.create_task(asyncio.to_thread(server.restart, DOWN_SECONDS))
    await asyncio.sleep(DOWN_SECONDS / 2)
    while_down = [await asyncio.to_thread(site.workers.health, i, "ready") for i in range(2)]
    await restarting
    for index in range(2):
        await asyncio.to_thread(site.workers.wait_ready, index, 30)
    return while_down


def until_refused(port: int) -> None:
    """Until nothing takes connections on ``port`` (the server went down)."""
    while answers("127.0.0.1", str(port)):
        time.sleep(0.05)


def assert_not_ready_for(while_down: list[Any], checks: set[str]) -> None:
    """Each worker answered, and said it was not ready, for ``checks`` failing."""
    for answer in while_down:
        assert answer is not None, "a worker answers while a server it uses is down"
        assert answer["status"] == "not_ready", answer
        assert checks <= set(answer["failed"]), answer


def assert_went_on(talks: list[Talk], outage: tuple[float, float]) -> None:
    """Every visitor kept their socket, and was answered and heard the agent while the
    server was down."""
    for talk in talks:
        said = talk.timeline(outage[0])
        assert not talk.visitor.when("reconnecting"), said
        if talk.voice:
            assert talk.heard_between(*outage) * FRAME_MS > 1000, said
        else:
            assert talk.answered_between(*outage) >= 1, said


async def test_a_postgresql_restart_mid_call_ends_no_call_and_loses_no_message(site):
    """PostgreSQL restarted (fast shutdown, 3 s down) under 20 calls. Nothing a live call
    does waits on the database: typed messages are answered and audio flows all along.
    What is said meanwhile stays queued in each call's transcript writer, which tries again
    (0.5, 1, 2, then every 5 s) until the database answers, in order. Visitors who hang up
    meanwhile are told at once; the rest of their transcript and the end of their call are
    written once the database answers. Meanwhile each process answers /health/live and
    says it is not ready (its database check fails). Once the database is back, every
    transcript reads as the conversation went, and every call's end is recorded."""
    talks = await talking(site, CHATS, VOICES, tag="pg")
    leaving, staying = talks[:3], talks[3:]  # text calls hung up while the database is down
    postgres = site.backing.postgres

    async def leave_while_down() -> None:
        await asyncio.to_thread(until_refused, postgres.port)
        await asyncio.sleep(0.3)
        await hang_up(leaving)

    await asyncio.sleep(1.0)
    left = asyncio.create_task(leave_while_down())
    while_down = await restart_while_probed(site, postgres)
    await left
    await asyncio.sleep(2.0)
    await hang_up(staying)
    outage_report("PostgreSQL restarted", staying, postgres.outage)
    assert_not_ready_for(while_down, {"database"})
    assert_went_on(staying, postgres.outage)
    for talk in leaving:
        assert talk.visitor.when("ended")[0] < postgres.outage[1], talk.timeline(0)
    assert_whole(site, talks)


async def test_a_redis_restart_mid_call_ends_no_call_and_moves_none(site):
    """Redis (the channel layer and the cache: the processes' leases) restarted empty, 3 s
    down, under 20 calls. Nothing a call does on its own process waits on Redis: typed
    messages are answered and audio flows all along. Meanwhile each process still answers
    /health/live and says it is not ready (the cache and channel-layer checks fail); once
    Redis is back, each writes its lease again, its calls' mailboxes join their groups
    again, and it is ready. No call is taken from its process (each process, finding its
    own lease gone, takes none for a lease period while the others write theirs again),
    and every transcript is whole."""
    assert site.workers is not None
    talks = await talking(site, CHATS, VOICES, tag="rd")
    await asyncio.sleep(1.0)
    owners = owners_of(site, talks)
    processes = dict(site.servers.processes)
    redis = site.backing.redis
    while_down = await restart_while_probed(site, redis)
    ready_after = time.monotonic() - redis.outage[1]
    # The sweeps after the quiet lease period take nothing either.
    await asyncio.sleep(leases.LEASE_SECONDS + 2 * RENEW_SECONDS)
    assert site.servers.processes == processes
    assert all(process.poll() is None for process in processes.values()), "none exited"
    assert owners_of(site, talks) == owners
    await hang_up(talks)
    outage_report("Redis restarted", talks, redis.outage)
    print(f"both workers ready {ready_after:.1f} s after Redis started again")
    assert_not_ready_for(while_down, {"cache", "channel_layer"})
    assert_went_on(talks, redis.outage)
    assert_whole(site, talks)


async def test_while_redis_is_down_visitors_reached_through_another_process_come_back_after(site):
    """What a Redis outage costs: the path between processes. Some visitors' sockets are on
    the other worker than their calls (they came back through it: a reload, another page),
    reached through the channel layer, which breaks: their sockets are sent to resume
    (4013), and the widget does ("Reconnecting…"). A resume that crosses processes while
    Redis is down, or just after (the call's process has not written its lease again, nor
    its call's mailbox joined the call's group), is sent to try again, its token kept. Each
    visitor comes back once Redis answers, to their call still held where it was, and the
    conversation reads whole; the agent's audio meanwhile is lost to them. Staff cannot end
    a call from the admin while Redis is down (the ask fails and nothing ends); they can
    once it is back. No new call starts while Redis is down."""
    assert site.workers is not None
    other = site.worker_socket_url(1)
    talks = await talking(site, 8, 4, tag="rx")
    placed = await asyncio.to_thread(Placed.find, site, talks)
    on_first = placed.by_worker[0]
    voice = [t for t in on_first if t.voice][:1]
    text = [t for t in on_first if not t.voice]
    assert voice and len(text) >= 3, "nginx spreads the calls over both workers"
    through_other, crossing = [*voice, text[0]], text[1:3]
    for talk in through_other + crossing:
        talk.visitor.resume_prefix = other
    for talk in through_other:
        talk.visitor.drop()
    for talk in through_other:
        await talk.visitor.wait_for(lambda t=talk: t.visitor.when("resumed"), 20)
    await asyncio.sleep(1.0)
    owners = owners_of(site, talks)
    redis = site.backing.redis
    await asyncio.to_thread(redis.stop)
    down = time.monotonic()
    for talk in crossing:
        talk.visitor.drop()
    assert not await asyncio.to_thread(site.end_from_admin, crossing[0].visitor.call_id)
    assert await refused(site, "chat"), "a new call is counted against its rates in Redis"
    await asyncio.sleep(max(0.0, down + DOWN_SECONDS - time.monotonic()))
    await asyncio.to_thread(redis.start)
    outage = (down, time.monotonic())
    away = through_other + crossing
    for talk in away:
        await talk.visitor.wait_for(lambda t=talk: resumed_after(t, down), 30)
    await asyncio.sleep(1.0)
    ended_by_staff = through_other[-1]
    await ended_by_staff.stop()
    assert await asyncio.to_thread(site.end_from_admin, ended_by_staff.visitor.call_id)
    await ended_by_staff.visitor.wait_for(ended_by_staff.visitor.done.is_set, 20)
    talking_on = [t for t in talks if t is not ended_by_staff]
    await hang_up(talking_on)
    back = [(t.visitor.when("resumed")[-1] - outage[1]) * 1000 for t in away]
    print(
        f"\nRedis down {outage[1] - outage[0]:.1f} s: {len(away)} visitors reached through "
        f"the other worker back {figures(back)} ms after it started again (min / median / "
        f"max); longest wait for an answer {figures([t.longest_wait_ms() for t in away])} ms"
    )
    for talk in away:
        assert resumed_after(talk, outage[1]), talk.timeline(down)
    for talk in through_other:
        moved = [e.detail for e in talk.visitor.events if e.at > down and e.kind == "closed"]
        assert CloseCode.MOVING in moved, talk.timeline(down)
    assert owners_of(site, talks) == owners, "every call stayed where it was"
    assert ended_by_staff.visitor.ended_reason == "ended-by-staff"
    stored = site.transcript(ended_by_staff.visitor.call_id)
    assert [(role, text) for role, text, _ in stored] == ended_by_staff.expected()
    assert_whole(site, talking_on)


def resumed_after(talk: Talk, moment: float) -> bool:
    return any(at > moment for at in talk.visitor.when("resumed"))


def owners_of(site: ChaosSite, talks: list[Talk]) -> dict[str, str]:
    """The process holding each visitor's call."""
    return {t.visitor.call_id: site.call(t.visitor.call_id)["owner"] for t in talks}
