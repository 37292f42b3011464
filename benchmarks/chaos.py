"""What visitors lose when a worker dies or a deploy restarts the workers: the audio gap,
how long a call takes to come back, how long a dead worker's calls hold their lines.

The deployment is the chaos tests' (tests/chaos.py): two Uvicorn workers behind nginx with
docs/examples/nginx.conf, PostgreSQL and Redis of their own, the VoiceHub sandbox in a
process of its own. ``--calls`` visitors talk through it (``--voices`` of them in
voice-and-text calls to the loopback agent, which plays every audio frame back, the others
in text calls to the echo agent), typing a message, waiting for its answer, pausing, again,
all along. Then, each ``--repeat`` times:

* ``kill``: SIGKILL one worker (VoiceHub lets calls be joined again, ``UPSTREAM.REJOIN``
  "auto"): how long each of its visitors takes to be back in their call, the agent audio
  each voice call missed and its longest silence, and messages lost (typed and never
  answered, missing from the stored transcript, stored twice);
* ``kill-no-rejoin``: the same where VoiceHub refuses rejoins ("never"); half the killed
  worker's visitors come back, the others are gone with it: how long until each of its
  calls is recorded ``relay-lost`` (its line free again; the lease is 15 s, the sweep
  every 5 s);
* ``rolling``: a deploy, SIGTERM to each worker in turn, started again once it stopped
  (rejoin "auto"): how long each moved call takes to be back, the audio gap;
* ``rolling-no-rejoin``: the same without rejoins: how long calls ran after the SIGTERM
  before their worker cut them (``DRAIN_SECONDS``, ``--drain-seconds``).

Figures are min / median / max over every run's values (``n`` of them: a value per call,
per move or per run, as the row says). Run with ``make bench-chaos`` or
``python benchmarks/chaos.py``. Nothing is asserted: tests/test_chaos.py asserts what must
hold, with bounds far above these figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.chaos import (  # noqa: E402
    Backing,
    ChaosSite,
    Placed,
    Talk,
    both_workers_after,
    figures,
    hang_up,
    talking,
)

Figures = dict[str, list[float]]
Scenario = Callable[[ChaosSite, argparse.Namespace, str], Awaitable[Figures]]

KILLED = 0  # the worker killed
BACK_WITHIN = 30.0  # seconds a killed worker's visitor is waited for
TALK_ON_SECONDS = 3.0  # visitors talk on this long once the calls are back
LOST_WITHIN = 60.0


def conversations(site: ChaosSite, talks: list[Talk]) -> Figures:
    """What the visitors typed, and what of it was lost: never answered, missing from the
    stored transcript, stored twice; and calls that did not end as their visitor ended them."""
    typed = unanswered = missing = twice = not_ended = 0
    for talk in talks:
        expected = Counter(talk.expected())
        stored = Counter((role, text) for role, text, _ in site.transcript(talk.visitor.call_id))
        typed += len(talk.said)
        unanswered += len(talk.unanswered)
        missing += sum((expected - stored).values())
        twice += sum((stored - expected).values())
        not_ended += talk.visitor.ended_reason != "visitor-ended"
    return {
        "messages typed, per run": [typed],
        "messages never answered, per run": [unanswered],
        "messages missing from the stored transcript, per run": [missing],
        "messages stored twice, per run": [twice],
        "calls not ended by their visitor, per run": [not_ended],
    }


def audio(talks: list[Talk], which: str) -> Figures:
    voices = [t for t in talks if t.voice]
    return {
        f"agent audio missed, {which} (ms)": [t.missing_audio_ms() for t in voices],
        f"longest silence, {which} (ms)": [t.longest_silence_ms() for t in voices],
    }


async def leave(talks: list[Talk]) -> None:
    """Every visitor hangs up; a call that does not end in time is counted (``calls not
    ended by their visitor``), not waited for."""
    with contextlib.suppress(TimeoutError):
        await hang_up(talks)


def ended_within(site: ChaosSite, call_ids: list[str], seconds: float) -> dict[str, dict]:
    """The calls' rows once all are ended, or as they are after ``seconds``."""
    with contextlib.suppress(AssertionError):
        return site.wait_ended(call_ids, seconds)
    return {call_id: site.call(call_id) for call_id in call_ids}


def back_after(talk: Talk, since: float) -> float | None:
    """Milliseconds from ``since`` to the visitor's first resume after it."""
    resumed = [at for at in talk.visitor.when("resumed") if at >= since]
    return (resumed[0] - since) * 1000 if resumed else None


async def kill(site: ChaosSite, args: argparse.Namespace, tag: str) -> Figures:
    """SIGKILL a worker while everyone talks; its visitors resume on the other one."""
    assert site.workers is not None
    with both_workers_after(site):
        talks = await talking(site, args.calls - args.voices, args.voices, tag=tag)
        await asyncio.sleep(1.0)
        on_killed = (await asyncio.to_thread(Placed.find, site, talks)).by_worker[KILLED]
        killed_at = time.monotonic()
        await asyncio.to_thread(site.workers.kill, KILLED)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(BACK_WITHIN):
                for talk in on_killed:
                    await talk.visitor.wait_for(
                        lambda t=talk: back_after(t, killed_at), BACK_WITHIN
                    )
        await asyncio.sleep(TALK_ON_SECONDS)
        await leave(talks)
    back = [back_after(t, killed_at) for t in on_killed]
    stayed = [t for t in talks if t not in on_killed]
    return {
        "calls on the killed worker, per run": [len(on_killed)],
        "back after, per call moved (ms)": [ms for ms in back if ms is not None],
        f"not back within {BACK_WITHIN:g} s, per run": [back.count(None)],
        **audio(on_killed, "per voice call moved"),
        **audio(stayed, "per voice call on the other worker"),
        **conversations(site, talks),
    }


async def kill_no_rejoin(site: ChaosSite, args: argparse.Namespace, tag: str) -> Figures:
    """SIGKILL a worker where VoiceHub refuses rejoins: its calls end as relay-lost, when
    their visitor comes back (the call cannot move) or once the worker's lease lapsed."""
    assert site.workers is not None
    with both_workers_after(site):
        talks = await talking(site, args.calls - args.voices, args.voices, tag=tag)
        on_killed = (await asyncio.to_thread(Placed.find, site, talks)).by_worker[KILLED]
        for talk in on_killed[1::2]:
            talk.visitor.comes_back = False
        killed_at, killed_clock = time.monotonic(), time.time()
        await asyncio.to_thread(site.workers.kill, KILLED)
        ids = [t.visitor.call_id for t in on_killed]
        rows = await asyncio.to_thread(ended_within, site, ids, LOST_WITHIN)
        await leave(talks)
    recorded: Figures = {"visitor came back": [], "visitor gone": []}
    for talk in on_killed:
        row = rows[talk.visitor.call_id]
        if row["ended_at"] is None:
            continue
        which = "visitor came back" if talk.visitor.comes_back else "visitor gone"
        recorded[which].append(row["ended_at"].timestamp() - killed_clock)
    told = [t.visitor.when("ended") for t in on_killed if t.visitor.comes_back]
    return {
        "calls on the killed worker, per run": [len(on_killed)],
        "recorded relay-lost after, visitor came back (s)": recorded["visitor came back"],
        "recorded relay-lost after, visitor gone (s)": recorded["visitor gone"],
        "visitor who came back told it ended after (s)": [e[0] - killed_at for e in told if e],
        f"not recorded ended within {LOST_WITHIN:g} s, per run": [
            sum(row["ended_at"] is None for row in rows.values())
        ],
        "ended otherwise than relay-lost, per run": [
            sum(row["end_reason"] not in ("relay-lost", "") for row in rows.values())
        ],
    }


async def rolling(site: ChaosSite, args: argparse.Namespace, tag: str) -> Figures:
    """A deploy: each worker in turn stops (SIGTERM), handing its calls over, and is
    started again; the visitors talk all along."""
    assert site.workers is not None
    stops: list[float] = []
    stopped: list[float] = []
    ready: list[float] = []
    with both_workers_after(site):
        talks = await talking(site, args.calls - args.voices, args.voices, tag=tag)
        await asyncio.sleep(1.0)
        for index in range(len(site.workers.ports)):
            stops.append(time.monotonic())
            await asyncio.to_thread(site.workers.stop_worker, index)
            stopped.append(time.monotonic() - stops[-1])
            await asyncio.to_thread(site.workers.start_worker, index)
            ready.append(time.monotonic() - stops[-1])
        await asyncio.sleep(TALK_ON_SECONDS)
        await leave(talks)
    moves = [
        (at - max(s for s in stops if s <= at)) * 1000
        for talk in talks
        for at in talk.visitor.when("resumed")
        if at >= stops[0]
    ]
    return {
        "worker stopped after (s)": stopped,
        "worker ready again after (s)": ready,
        "moves, per run": [len(moves)],
        "back after, per move (ms)": moves,
        **audio(talks, "per voice call"),
        **conversations(site, talks),
    }


async def rolling_no_rejoin(site: ChaosSite, args: argparse.Namespace, tag: str) -> Figures:
    """A deploy where VoiceHub refuses rejoins: each stopping worker lets its calls run
    for DRAIN_SECONDS, then cuts them (the visitor may start a new call at once)."""
    assert site.workers is not None
    cut_after: list[float] = []
    stopped: list[float] = []
    cut = otherwise = 0
    with both_workers_after(site):
        talks = await talking(site, args.calls - args.voices, args.voices, tag=tag)
        for index in range(len(site.workers.ports)):
            in_calls = [t for t in talks if not t.visitor.done.is_set()]
            placed = await asyncio.to_thread(Placed.find, site, in_calls)
            stopping = time.monotonic()
            await asyncio.to_thread(site.workers.stop_worker, index)
            stopped.append(time.monotonic() - stopping)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):  # the last frames the worker sent
                    for talk in placed.by_worker[index]:
                        await talk.visitor.done.wait()
            for talk in placed.by_worker[index]:
                if talk.visitor.ended_reason == "relay-stopped":
                    cut += 1
                    cut_after.append(talk.visitor.when("ended")[0] - stopping)
                else:
                    otherwise += 1
            await asyncio.to_thread(site.workers.start_worker, index)
        await leave(talks)
    return {
        "worker stopped after (s)": stopped,
        "calls cut, per run": [cut],
        "ran after the SIGTERM, per call cut (s)": cut_after,
        "calls on a stopping worker not cut, per run": [otherwise],
    }


SCENARIOS: dict[str, tuple[str, Scenario, bool]] = {
    "kill": ('SIGKILL one worker, rejoin ("auto")', kill, True),
    "kill-no-rejoin": ('SIGKILL one worker, no rejoin ("never")', kill_no_rejoin, False),
    "rolling": ('rolling restart (SIGTERM each worker in turn), rejoin ("auto")', rolling, True),
    "rolling-no-rejoin": (
        'rolling restart, no rejoin ("never"), DRAIN_SECONDS {drain:g}',
        rolling_no_rejoin,
        False,
    ),
}


def table(title: str, runs: list[Figures]) -> None:
    """The scenario's figures, pooled over its runs."""
    pooled: Figures = {}
    for run in runs:
        for label, values in run.items():
            pooled.setdefault(label, []).extend(values)
    print(f"\n{title}")
    for label, values in pooled.items():
        digits = 1 if label.endswith("(s)") else 0
        print(f"  {label:<60} {len(values):>4}  {figures(values, digits)}", flush=True)


def header(args: argparse.Namespace) -> str:
    now = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"bench-chaos, {now}, {platform.node()}: {os.cpu_count()} cores, load {load}, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}\n"
        f"{args.calls} calls ({args.calls - args.voices} text, {args.voices} TextAudio voice) "
        "through nginx (docs/examples/nginx.conf) to 2 Uvicorn workers, PostgreSQL + Redis; "
        f"{args.repeat} run(s) per scenario.\n"
        f"{'':<62} {'n':>4}  min / median / max"
    )


async def run(backing: Backing, workdir: Path, args: argparse.Namespace) -> None:
    for rejoin in (True, False):
        names = [n for n in args.scenarios if SCENARIOS[n][2] is rejoin]
        if not names:
            continue
        with ChaosSite(
            backing,
            workdir / ("rejoin" if rejoin else "no-rejoin"),
            rejoin=rejoin,
            drain_seconds=args.drain_seconds,
        ) as site:
            for name in names:
                title, scenario, _ = SCENARIOS[name]
                runs = []
                for number in range(args.repeat):
                    print(f"{name}: run {number + 1} of {args.repeat}", file=sys.stderr)
                    runs.append(await scenario(site, args, f"{name[0]}{number}-"))
                table(title.format(drain=args.drain_seconds), runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--calls", type=int, default=20, help="calls at once, voice included")
    parser.add_argument("--voices", type=int, default=5, help="of the calls, voice-and-text ones")
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario")
    parser.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=25.0,
        help="DRAIN_SECONDS (the app's default: 25): how long a stopping worker lets its "
        "calls run where VoiceHub refuses rejoins",
    )
    args = parser.parse_args()
    if not 0 <= args.voices <= args.calls:
        parser.error("--voices must be between 0 and --calls")

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    workdir = Path(tempfile.mkdtemp(prefix="webcall-chaos-"))
    print(header(args), flush=True)
    with Backing() as backing:
        asyncio.run(run(backing, workdir, args))
    print(f"\nLogs: {workdir}")


if __name__ == "__main__":
    main()
