"""What the sandbox knows: its API keys, its agents, and how its echo agent behaves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from webcall_widget.sandbox.vad import VadConfig
from webcall_widget.voicehub.events import AudioFormat, Mode
from webcall_widget.voicehub.profile import UpstreamProfile

ALL_MODES = frozenset(Mode)
UNLIMITED = None

SANDBOX_API_KEY = "sandbox-key"
SANDBOX_AGENT_ID = "echo-agent"
REJOIN_GRACE = 60.0  # seconds; see SandboxConfig.rejoin_grace


@dataclass(frozen=True, slots=True)
class SandboxAgent:
    modes: frozenset[Mode] = ALL_MODES
    misconfigured: bool = False
    # Return every audio frame at once instead of echoing whole utterances: the
    # benchmark's agent, so that what it measures is the relay.
    loopback: bool = False


def _default_keys() -> dict[str, int | None]:
    # key -> credits; each created call costs one. None: unlimited.
    return {SANDBOX_API_KEY: UNLIMITED, "sandbox-key-no-credits": 0}


def _default_agents() -> dict[str, SandboxAgent]:
    return {
        SANDBOX_AGENT_ID: SandboxAgent(),
        "text-echo-agent": SandboxAgent(modes=frozenset({Mode.TEXT})),
        "voice-echo-agent": SandboxAgent(modes=frozenset({Mode.WEB_AUDIO, Mode.TEXT_AUDIO})),
        "misconfigured-agent": SandboxAgent(misconfigured=True),
        "loopback-agent": SandboxAgent(loopback=True),
    }


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """The sandbox's accounts and agents.

    The defaults make every documented create-web-call answer reachable:
    ``echo-agent`` with ``sandbox-key`` succeeds, an unknown key gets 401,
    ``sandbox-key-no-credits`` gets 403, ``misconfigured-agent`` gets 400, and a mode the
    agent does not allow (``text-echo-agent`` with ``WebAudio``) gets 405.
    """

    api_keys: Mapping[str, int | None] = field(default_factory=_default_keys)
    agents: Mapping[str, SandboxAgent] = field(default_factory=_default_agents)
    greeting: str = "Hi! I'm the sandbox echo agent. Say something and I'll say it back."
    # Pause between the words of a streamed reply (partial messages), in seconds.
    word_delay: float = 0.04
    audio: AudioFormat = field(default_factory=AudioFormat)
    # The socket protocol it speaks (see sandbox/variants.py); ``audio`` is its real rates.
    profile: UpstreamProfile = field(default_factory=UpstreamProfile)
    vad: VadConfig = field(default_factory=VadConfig)
    # Play a short chime when an audio call joins, so the visitor hears the line is open.
    voice_greeting: bool = True
    # End the call when the visitor says goodbye (False: say goodbye and keep the line,
    # as an agent that never ends calls itself).
    hangs_up_on_goodbye: bool = True
    # Seconds a call whose socket was lost (dropped without leaving its channels or a
    # Socket.IO disconnect) waits for a new socket to join it and go on, before it ends.
    # Whether a second socket may join at all is the profile's REJOIN.
    rejoin_grace: float = REJOIN_GRACE
    # Socket.IO heartbeat, in whole seconds (Engine.IO's defaults).
    ping_interval: int = 25
    ping_timeout: int = 20
    # Call webhooks: where to post them (a URL, or a path on the site that created the
    # call; None: no webhooks unless a test sets SandboxState.webhook), the secret sent in
    # x-webhook-secret, the waits between retries of a delivery that failed (no answer or
    # not 2xx), and how long to wait for an answer.
    webhook_url: str | None = None
    webhook_secret: str = ""
    webhook_retry_delays: tuple[float, ...] = (1.0, 5.0, 30.0)
    webhook_timeout: float = 10.0
