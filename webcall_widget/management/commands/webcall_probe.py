"""``manage.py webcall_probe <agent-slug>``: learn what the real VoiceHub socket says.

It creates a real call with the agent's stored key (it costs a call), opens the socket
with the configured ``UPSTREAM`` settings (flags override any of them), joins, talks,
drops the socket and joins again from another, records every event for up to
``--seconds``, leaves, writes the recording to ``--out`` and prints the settings it
suggests, with what it could not learn. See :mod:`webcall_widget.probe.run`.
"""

from __future__ import annotations

import asyncio
import json
import pprint
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from webcall_widget import conf
from webcall_widget.models import Agent
from webcall_widget.probe import LIMITS, ProbeOptions, ProbeResult, run_probe
from webcall_widget.voicehub.events import Mode
from webcall_widget.voicehub.secret import Secret


class Command(BaseCommand):
    help = (
        "Create a real VoiceHub call for an agent (it costs a call), record what its "
        "socket says, and suggest the WEBCALL_WIDGET['UPSTREAM'] settings that fit."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="the agent's slug (its key is used, never shown)")
        parser.add_argument(
            "--mode",
            choices=[m.value for m in Mode],
            help="the kind of call (default: the agent's default mode); "
            "WebAudio and TextAudio also send a few seconds of speech-like audio",
        )
        parser.add_argument(
            "--seconds", type=float, default=30.0, help="longest recording (default 30)"
        )
        parser.add_argument("--out", default="probe.json", help="where to write the recording")
        parser.add_argument("--text", default="Hello! This is a connection test.")
        parser.add_argument(
            "--bye", default="Goodbye", help="sent last, to see how a call ends ('' to skip)"
        )
        parser.add_argument("--url", help="VoiceHub's base URL, instead of UPSTREAM.URL")
        parser.add_argument("--transport", choices=["socketio", "websocket"])
        parser.add_argument(
            "--socket-path-as", choices=["path", "namespace", "url", "auto"], dest="path_as"
        )
        parser.add_argument(
            "--connect-auth",
            metavar="JSON",
            help="""the Socket.IO CONNECT payload, e.g. '{"callId": "{callId}"}'""",
        )
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="any UPSTREAM setting (VALUE is JSON, or else a string), e.g. "
            "--set AUDIO_IN_EVENT=audio.input (repeatable)",
        )
        parser.add_argument(
            "--no-guess",
            action="store_true",
            help="open the socket and send text and audio only as configured, without "
            "trying other ways, event names or audio shapes",
        )
        parser.add_argument(
            "--no-rejoin",
            action="store_true",
            help="do not drop the socket mid-call to see whether another may join the call "
            "(UPSTREAM.REJOIN stays unknown)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            agent = Agent.objects.get(slug=options["slug"])
        except Agent.DoesNotExist:
            raise CommandError(f"No agent has the slug {options['slug']!r}.") from None
        settings = conf.get_settings()
        base_url = (options["url"] or settings.upstream.url or "").rstrip("/")
        if not base_url:
            raise CommandError(
                "UPSTREAM.URL is not set, so calls go to the sandbox on this site; the probe "
                "is for a real VoiceHub. Set WEBCALL_WIDGET['UPSTREAM']['URL'] or pass --url "
                "(for a sandbox variant: python -m webcall_widget.sandbox --variant namespace "
                "and --url http://127.0.0.1:8765)."
            )
        upstream, fixed = self._upstream(options)
        mode = Mode(options["mode"] or agent.default_mode)
        self.stdout.write(
            f"Creating a real VoiceHub call ({mode.value}) for agent {agent.slug!r} at "
            f"{base_url}, with its API key: this costs a call."
        )
        probe_options = ProbeOptions(
            base_url=base_url,
            agent_id=agent.voicehub_agent_id,
            api_key=Secret(agent.api_key),
            mode=mode,
            upstream=upstream,
            seconds=options["seconds"],
            text=options["text"],
            bye=options["bye"],
            guess=not options["no_guess"],
            rejoin=not options["no_rejoin"],
            fixed=frozenset(fixed),
            request_timeout=settings.upstream.request_timeout,
            connect_timeout=settings.upstream.connect_timeout,
            join_timeout=settings.upstream.join_timeout,
        )
        result = asyncio.run(run_probe(probe_options))
        document = result.as_json()
        out = Path(options["out"])
        out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        self.stdout.write(probe_options.api_key.redact(summary(result, document)))
        self.stdout.write(f"The recording is in {out}.")
        if result.failure is not None:
            raise CommandError(probe_options.api_key.redact(result.failure.describe()))

    def _upstream(self, options: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
        """The UPSTREAM settings with the flags applied, and the keys the flags set."""
        raw = conf.raw_setting()
        upstream = dict(raw.get("UPSTREAM", {})) if isinstance(raw, dict) else {}
        flags: dict[str, Any] = {}
        if options["transport"]:
            flags["TRANSPORT"] = options["transport"]
        if options["path_as"]:
            flags["SOCKET_PATH_AS"] = options["path_as"]
        if options["connect_auth"]:
            flags["CONNECT_AUTH"] = _json(options["connect_auth"], "--connect-auth")
        for item in options["set"]:
            key, equals, value = item.partition("=")
            if not equals or not key:
                raise CommandError(f"--set takes KEY=VALUE, not {item!r}.")
            try:
                flags[key.strip()] = json.loads(value)
            except ValueError:
                flags[key.strip()] = value
        upstream.update(flags)
        upstream.pop("URL", None)
        problems = conf.problems({"UPSTREAM": upstream})
        if problems:
            raise CommandError(
                "These settings cannot be used: "
                + " ".join(f"{p.message} {p.hint}" for p in problems)
            )
        return upstream, set(flags)


def _json(text: str, flag: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CommandError(f"{flag} takes JSON: {exc}") from None


def summary(result: ProbeResult, document: dict[str, Any]) -> str:
    """What the command prints: what happened, what it means, the settings to use."""
    lines = []
    created = document["createWebCall"]
    if created:
        lines.append(
            f"create-web-call: callId {created['callId']}, "
            f"webCallSocketPath {created['webCallSocketPath']!r}"
        )
    for attempt in document["connection"]:
        tried = attempt["changes"] or "as configured"
        lines.append(f"socket ({tried}): {attempt['outcome']}")
    counts: dict[str, int] = {}
    for event in document["events"]:
        if event["dir"] == "in":
            counts[event["event"]] = counts.get(event["event"], 0) + 1
    if counts:
        listed = ", ".join(f"{name} x{n}" for name, n in sorted(counts.items()))
        lines.append(f"received: {listed}")
    lines += [f"note: {note}" for note in document["notes"]]
    if document["findings"]:
        lines.append("Findings:")
        lines += [f"  - {finding}" for finding in document["findings"]]
    if document["suggested"] is not None:
        changes = result.analysis.changes if result.analysis else {}
        unlearnt = document["unlearnt"]
        if changes:
            lines.append("Suggested settings (the URL and your other settings as they are):")
        elif unlearnt:
            lines.append(
                "Your settings fit what VoiceHub sent, but the probe could not see "
                "everything (below); as they are:"
            )
        else:
            lines.append("Your settings fit what VoiceHub sent; as a reminder:")
        settings = {
            "UPSTREAM": {"URL": result.options.base_url, **document["suggested"]["UPSTREAM"]}
        }
        lines.append("WEBCALL_WIDGET = " + pprint.pformat(settings, sort_dicts=False, width=88))
        if unlearnt:
            lines.append("Not learnt in this run:")
            lines += [f"  - {item}" for item in unlearnt]
        lines.append("What no probe can learn (see docs/probe-limits.md):")
        lines += [f"  - {limit}" for limit in LIMITS]
        lines.append(
            "Then try it on the demo page (make run), and look at the Call in the admin: "
            "its 'upstream notes' say what the relay did not understand."
        )
    return "\n".join(lines)
