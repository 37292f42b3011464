"""What the sandbox serves after a call, as plain ASGI handlers:

* ``GET analysis/<analysisId>``: the analysis named in an ``AnalysisResultReady`` webhook,
  to the API key that created the call, in ``x-dq-api-key`` (401 otherwise, 404 for an
  unknown id; ``Faults.analysis_fail_first`` makes it answer 503 first);
* ``GET recordings/<callId>.wav``: the call's "recording", a short chime (to anyone: a
  link in the admin cannot send a key).
"""

from __future__ import annotations

import io
import json
import wave

from webcall_widget.sandbox import audio
from webcall_widget.sandbox.config import SandboxConfig
from webcall_widget.sandbox.http import Receive, Scope, Send, respond_error
from webcall_widget.sandbox.state import SandboxState

HEADER_ANALYSIS_KEY = "x-dq-api-key"


class Results:
    def __init__(self, config: SandboxConfig, state: SandboxState, prefix: str) -> None:
        self.config = config
        self.state = state
        self.analysis_path = prefix + "analysis/"
        self.recordings_path = prefix + "recordings/"

    def handles(self, path: str) -> bool:
        return path.startswith((self.analysis_path, self.recordings_path))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if scope["method"] != "GET":
            await respond_error(send, 404, f"Cannot {scope['method']} {path}")
        elif path.startswith(self.analysis_path):
            await self._analysis(scope, send, path.removeprefix(self.analysis_path))
        else:
            await self._recording(send, path.removeprefix(self.recordings_path))

    async def _analysis(self, scope: Scope, send: Send, analysis_id: str) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.state.count_analysis_fetch()
        analysis = self.state.analyses.get(analysis_id)
        if analysis is None:
            await respond_error(send, 404, "Analysis not found")
            return
        call = self.state.calls.get(str(analysis.get("callId")))
        if call is None or headers.get(HEADER_ANALYSIS_KEY) != call.api_key:
            await respond_error(send, 401, "Invalid API key")
            return
        faults = self.state.faults
        if faults.analysis_fail_first > 0:
            faults.analysis_fail_first -= 1
            await respond_error(send, 503, "injected fault")
            return
        await _respond(send, 200, json.dumps(analysis).encode(), b"application/json")

    async def _recording(self, send: Send, name: str) -> None:
        call = self.state.calls.get(name.removesuffix(".wav"))
        if not name.endswith(".wav") or call is None or not call.finished:
            await respond_error(send, 404, "Recording not found")
            return
        rate = self.config.audio.output_rate
        pcm = audio.tone((660.0, 880.0), 0.4, rate)
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(rate)
            wav.writeframes(pcm)
        await _respond(send, 200, buffer.getvalue(), b"audio/wav")


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
