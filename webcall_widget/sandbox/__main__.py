"""Run the VoiceHub sandbox on its own: ``python -m webcall_widget.sandbox --port 8765``.

Point a site at it with ``WEBCALL_WIDGET = {"UPSTREAM": {"URL": "http://127.0.0.1:8765"}}``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from webcall_widget.sandbox import extra
from webcall_widget.sandbox.config import REJOIN_GRACE, SandboxAgent, SandboxConfig
from webcall_widget.sandbox.variants import VARIANTS, variant_config
from webcall_widget.voicehub.events import Mode, Transport


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m webcall_widget.sandbox", description="A local VoiceHub emulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument(
        "--variant",
        choices=sorted(VARIANTS),
        default="default",
        help="the socket protocol variant to speak (webcall_widget/sandbox/variants.py); "
        "point the relay at it with that variant's UPSTREAM settings",
    )
    parser.add_argument(
        "--transport",
        choices=[t.value for t in Transport],
        help="socket framing, instead of the variant's",
    )
    parser.add_argument(
        "--api-key", action="append", default=[], help="accept this API key (repeatable)"
    )
    parser.add_argument(
        "--agent",
        action="append",
        default=[],
        metavar="ID[:MODE,MODE]",
        help="serve this agent id, optionally limited to some modes (repeatable)",
    )
    parser.add_argument("--word-delay", type=float, default=0.04, help="seconds between words")
    parser.add_argument(
        "--rejoin-grace",
        type=float,
        default=REJOIN_GRACE,
        metavar="SECONDS",
        help="how long a call whose socket was lost waits for another socket to join it "
        "(default %(default)g; the no-rejoin variant refuses any)",
    )
    parser.add_argument(
        "--webhook-url", help="post call webhooks here (e.g. a site's agents/<slug>/webhook)"
    )
    parser.add_argument(
        "--webhook-secret", default="", help="send this in x-webhook-secret with webhooks"
    )
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> SandboxConfig:
    defaults = SandboxConfig()
    keys = dict(defaults.api_keys)
    keys.update(dict.fromkeys(args.api_key))
    agents = dict(defaults.agents)
    for spec in args.agent:
        agent_id, _, modes = spec.partition(":")
        allowed = frozenset(Mode(m) for m in modes.split(",")) if modes else frozenset(Mode)
        agents[agent_id] = SandboxAgent(modes=allowed)
    config = SandboxConfig(
        api_keys=keys,
        agents=agents,
        word_delay=args.word_delay,
        rejoin_grace=args.rejoin_grace,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
    )
    return variant_config(args.variant, config)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        extra.require(extra.STANDALONE)
    except extra.SandboxNotInstalled as exc:
        raise SystemExit(str(exc)) from exc
    from daphne.server import Server

    from webcall_widget.sandbox.app import Sandbox

    transport = Transport(args.transport) if args.transport else None
    app = Sandbox(build_config(args), transport=transport)
    server: Server | None = None

    def announce() -> None:
        assert server is not None
        for port in server.listening_addresses:
            print(f"VoiceHub sandbox listening on http://{args.host}:{port[1]}", flush=True)

    server = Server(
        application=app,
        endpoints=[f"tcp:port={args.port}:interface={args.host}"],
        ready_callable=announce,
        verbosity=0,
    )
    server.run()


if __name__ == "__main__":
    main()
