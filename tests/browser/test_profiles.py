"""The widget in Chromium against VoiceHub protocols other than the default: the relay's
UPSTREAM settings, and the mounted sandbox speaking the same (it follows them)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.widget import WidgetOnPage
from webcall_widget.models import Call, CallStatus
from webcall_widget.sandbox.variants import VARIANTS

PROFILES: dict[str, dict[str, Any]] = {
    # a namespace with CONNECT auth, a join acknowledged, messages streamed as pieces
    # without ids from "customer" and "agent", calls ended by disconnecting
    "socketio-namespace": dict(VARIANTS["everything"]),
    # a plain WebSocket with the call in its query, other message fields, a join nobody
    # confirms
    "websocket-query": {
        "TRANSPORT": "websocket",
        "CONNECT_QUERY": {"callId": "{callId}"},
        **VARIANTS["message-fields"],
        "JOIN_CONFIRMATION": "none",
        "CALL_END": "either",
    },
}


@pytest.fixture(params=sorted(PROFILES))
def profile(request, demo_settings):
    demo_settings.WEBCALL_WIDGET = {
        **demo_settings.WEBCALL_WIDGET,
        "UPSTREAM": PROFILES[request.param],
    }
    return request.param


def test_a_text_chat_from_greeting_to_goodbye(profile, live_site, page):
    page.goto(live_site.url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    widget.start_text_chat()
    widget.say("hello from another protocol")
    widget.expect_agent_reply("You said: hello from another protocol")
    expect(widget.messages("agent")).to_have_count(2)  # the greeting and one reply
    expect(widget.messages("user")).to_have_text(["hello from another protocol"])
    widget.say("bye")
    widget.expect_state("ended")
    expect(widget.messages("agent")).to_have_count(3)
    call = Call.objects.get()
    assert (call.status, call.error_code) == (CallStatus.ENDED, "")
    assert (call.upstream_unknown_events, call.upstream_bad_payloads) == (0, 0)
