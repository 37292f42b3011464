"""A lean VoiceHub stand-in for the load benchmark: it returns every audio chunk at once.

The sandbox's echo agent does real work per frame (voice activity detection, pacing), about
280 µs of CPU per echoed frame, so it saturates its core long before the relay does. This
one does only what the protocol needs: ``POST /calls/public/create-web-call`` on one port,
and on another a Socket.IO v5 socket that confirms ``channel.join``, sends every binary
``audio.chunk`` straight back and answers every ``text.message`` with its text as the
agent's message, over ``benchmarks/wire.py``'s lean WebSocket on uvloop. What
the load benchmark measures is then the path, not the agent.

Run: ``python benchmarks/loopback_upstream.py --http-port 8801 --ws-port 8802``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import wire

# Heartbeats every five minutes: a benchmark call is never idle long enough to need one.
OPEN = (
    '0{"sid":"bench","upgrades":[],"pingInterval":300000,"pingTimeout":60000,"maxPayload":1000000}'
)
AUDIO_HEADER = b'451-["audio.chunk",{"_placeholder":true,"num":0}]'
_ids = itertools.count(1)


class Upstream(wire.Socket):
    """One relay's (or the direct client's) Socket.IO socket: every binary attachment of an
    ``audio.chunk`` goes straight back, with its header, in one write."""

    def __init__(self) -> None:
        super().__init__(client=False)
        self.expecting_audio = False
        self.on_frame = self.handle
        asyncio.get_running_loop().create_task(self.open())

    async def open(self) -> None:
        if await wire.accept(self) is not None:
            self.send_text(OPEN)

    def handle(self, opcode: int, payload: bytes) -> None:
        if opcode == wire.BINARY:
            if self.expecting_audio:
                self.expecting_audio = False
                self.send_frames((wire.TEXT, AUDIO_HEADER), (wire.BINARY, payload))
            return
        if payload.startswith(b"451-"):
            self.expecting_audio = True
        elif payload == b"40":
            self.send_text('40{"sid":"bench"}')
        elif payload.startswith(b'42["channel.join"'):
            event = json.loads(payload[2:])
            self.send_text("42" + json.dumps(["channel.joined", event[1]]))
        elif payload.startswith(b'42["text.message"'):
            said = json.loads(payload[2:])[1]
            answer = {
                "id": f"answer-{next(_ids)}",
                "role": "agent",
                "text": said["text"],
            }
            self.send_text("42" + json.dumps(["created", {**answer, "final": True}]))
        elif payload == b"41":
            self.abort(None)


async def create_web_call(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ws_port: int
) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        body = json.dumps(
            {
                "callId": f"bench-{next(_ids)}",
                "webCallSocketPath": f"ws://127.0.0.1:{ws_port}/socket.io/",
            }
        ).encode()
        writer.write(
            b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
    finally:
        writer.close()


async def main(http_port: int, ws_port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    http = await asyncio.start_server(
        lambda r, w: create_web_call(r, w, ws_port), "127.0.0.1", http_port
    )
    ws = await loop.create_server(Upstream, "127.0.0.1", ws_port)
    async with http, ws:
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--ws-port", type=int, required=True)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=wire.new_event_loop) as runner:
        runner.run(main(args.http_port, args.ws_port))
