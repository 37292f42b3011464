"""Where the time goes between a visitor's click on a voice mode and a live call: marks
the page puts on what the widget calls (instrumented here, never in the shipped files)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

# Each engine's voice starts in this run, for the summary (conftest.py): the first of an
# engine is its browser's very first audio, which costs Firefox most.
VOICE_STARTS: dict[str, list[str]] = defaultdict(list)

MARK_VOICE_START = """(() => {
  const mark = (name) => performance.getEntriesByName('webcall:' + name).length
    || performance.mark('webcall:' + name)
  document.addEventListener('click', (e) => {
    const mode = e.composedPath()[0]?.dataset?.mode
    if (mode && mode !== 'text') mark('click')
  }, { capture: true })
  const Context = window.AudioContext
  window.AudioContext = class extends Context {
    constructor(...args) {
      mark('context')
      super(...args)
      mark('context-made')
      const running = () => this.state === 'running' && mark('context-running')
      running()
      this.addEventListener('statechange', running)
    }
  }
  if (!window.isSecureContext) return  // no audio worklet, no microphone
  const addModule = AudioWorklet.prototype.addModule
  AudioWorklet.prototype.addModule = function (...args) {
    mark('worklet')
    return addModule.apply(this, args).then((value) => (mark('worklet-loaded'), value))
  }
  const getUserMedia = MediaDevices.prototype.getUserMedia
  MediaDevices.prototype.getUserMedia = function (...args) {
    mark('microphone')
    return getUserMedia.apply(this, args).then((stream) => (mark('microphone-open'), stream))
  }
  const fetch = window.fetch
  window.fetch = (...args) => {
    const create = String(args[0]).endsWith('/calls')
    if (create) mark('create')
    return fetch(...args).then((response) => (create && mark('created'), response))
  }
  const Socket = window.WebSocket
  window.WebSocket = class extends Socket {
    constructor(...args) {
      super(...args)
      mark('socket')
      this.addEventListener('open', () => mark('socket-open'))
      const send = this.send
      this.send = (data) => {
        if (typeof data !== 'string') mark('first-audio-sent')
        send.call(this, data)
      }
    }
  }
  document.addEventListener('webcall:ready', () => mark('live'))
})()"""

MARKS = """() => {
  const [click] = performance.getEntriesByName('webcall:click')
  if (!click) return null
  return Object.fromEntries(performance.getEntriesByType('mark')
    .filter((m) => m.name.startsWith('webcall:'))
    .map((m) => [m.name.slice(8), Math.round(m.startTime - click.startTime)]))
}"""

ORDER = [
    "click",
    "context",
    "context-made",
    "worklet",
    "microphone",
    "context-running",
    "worklet-loaded",
    "microphone-open",
    "create",
    "created",
    "socket",
    "socket-open",
    "live",
    "first-audio-sent",
]


def voice_start(marks: dict[str, Any]) -> str:
    """``marks`` as one line: each milestone's time after the click, in ms."""
    known = [name for name in ORDER if name in marks]
    others = sorted(set(marks) - set(known))
    return ", ".join(f"{name} {marks[name]}" for name in [*known, *others])
