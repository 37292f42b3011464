"""A small WebDriver BiDi client: commands and events over one WebSocket.

Firefox speaks BiDi natively. Playwright drives Firefox over BiDi only from newer Firefox
versions than Debian's ESR (it sends commands ESR 153 does not know, such as
``emulation.setMediaFeaturesOverride``), so the suite speaks it itself: the few commands it
needs are plain JSON (https://w3c.github.io/webdriver-bidi/).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

COMMAND_SECONDS = 30

Listener = Callable[[str, dict[str, Any]], None]


class BidiError(RuntimeError):
    """The browser answered a command with an error."""


class BidiSession:
    """Commands answered in order of their ids; events handed to every listener, on the
    reader thread (a listener must not send a command)."""

    def __init__(self, url: str) -> None:
        self.socket: ClientConnection = connect(url, max_size=None, open_timeout=20, legacy=True)
        self._ids = itertools.count(1)
        self._waiting: dict[int, Future[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.listeners: list[Listener] = []
        self.ended: BaseException | None = None
        self._reader = threading.Thread(target=self._read, name="bidi-reader", daemon=True)
        self._reader.start()

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        if self.ended:
            raise BidiError(f"{method}: the connection is gone") from self.ended
        answer: Future[dict[str, Any]] = Future()
        with self._lock:
            command = next(self._ids)
            self._waiting[command] = answer
        self.socket.send(json.dumps({"id": command, "method": method, "params": params}))
        message = answer.result(timeout=COMMAND_SECONDS)
        if message.get("type") == "error":
            raise BidiError(f"{method}: {message['error']}: {message.get('message', '')}")
        result: dict[str, Any] = message["result"]
        return result

    def _read(self) -> None:
        ended: BaseException = BidiError("the browser closed the connection")
        try:
            for raw in self.socket:
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        answer = self._waiting.pop(message["id"], None)
                    if answer:
                        answer.set_result(message)
                elif message.get("type") == "event":
                    for listener in list(self.listeners):
                        listener(message["method"], message["params"])
        except ConnectionClosed:
            pass
        except BaseException as error:  # given to every command waiting, and to the next
            ended = error
        finally:
            self.ended = ended
            with self._lock:
                waiting, self._waiting = self._waiting, {}
            for answer in waiting.values():
                answer.set_exception(ended)

    def close(self) -> None:
        self.socket.close()
        self._reader.join(10)
