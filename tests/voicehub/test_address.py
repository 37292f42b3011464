"""Where a call's socket is, read from webCallSocketPath as the profile says."""

from __future__ import annotations

import dataclasses

import pytest

from webcall_widget.voicehub.address import ConnectContext, addresses
from webcall_widget.voicehub.errors import UpstreamConnectFailed
from webcall_widget.voicehub.events import Transport
from webcall_widget.voicehub.profile import ConnectTemplate, SocketPathAs, UpstreamProfile
from webcall_widget.voicehub.secret import Secret

CONTEXT = ConnectContext("call-1", "agent-9", Secret("s3cret-key"))


def profile(**changes) -> UpstreamProfile:
    return dataclasses.replace(UpstreamProfile(), **changes)


def test_a_path_is_the_socketio_path_on_the_voicehub_host():
    (address,) = addresses("https://vh.example", "/calls/1", profile(), CONTEXT)
    assert address.url == "wss://vh.example/calls/1/?EIO=4&transport=websocket"
    assert address.namespace == "/"


def test_a_namespace_is_served_on_the_socketio_path_under_the_base_url():
    (address,) = addresses(
        "http://127.0.0.1:8000/voicehub-sandbox",
        "/webcall/1",
        profile(socket_path_as=SocketPathAs.NAMESPACE),
        CONTEXT,
    )
    assert (
        address.url == "ws://127.0.0.1:8000/voicehub-sandbox/socket.io/?EIO=4&transport=websocket"
    )
    assert address.namespace == "/webcall/1"


def test_a_full_url_namespace_is_read_as_socketio_client_reads_it():
    (address,) = addresses(
        "https://vh.example",
        "https://rt.example/calls?x=1",
        profile(socket_path_as=SocketPathAs.NAMESPACE),
    )
    assert address.url == "wss://rt.example/socket.io/?x=1&EIO=4&transport=websocket"
    assert address.namespace == "/calls"


def test_a_url_is_used_as_it_is():
    (address,) = addresses(
        "https://vh.example",
        "wss://rt.example/ws?call=1",
        profile(socket_path_as=SocketPathAs.URL, transport=Transport.WEBSOCKET),
    )
    assert address.url == "wss://rt.example/ws?call=1"


def test_a_path_where_a_url_is_expected_says_which_setting_to_change():
    with pytest.raises(UpstreamConnectFailed, match="SOCKET_PATH_AS is 'url'"):
        addresses("https://vh.example", "/calls/1", profile(socket_path_as=SocketPathAs.URL))


def test_auto_tries_a_path_then_a_namespace():
    found = addresses(
        "https://vh.example", "/webcall/1", profile(socket_path_as=SocketPathAs.AUTO)
    )
    assert [(a.read_as, a.namespace) for a in found] == [
        (SocketPathAs.PATH, "/"),
        (SocketPathAs.NAMESPACE, "/webcall/1"),
    ]


def test_templates_are_filled_in_and_shown_unfilled():
    connect = ConnectTemplate(
        auth={"callId": "{callId}", "nested": {"agent": "{agentId}"}},
        query={"key": "{apiKey}"},
        headers={"x-api-access-key": "{apiKey}", "x-other": "{unknown}"},
    )
    (address,) = addresses("https://vh.example", "/s", profile(connect=connect), CONTEXT)
    assert address.auth == {"callId": "call-1", "nested": {"agent": "agent-9"}}
    assert address.headers == {"x-api-access-key": "s3cret-key", "x-other": "{unknown}"}
    assert "key=s3cret-key" in address.url
    assert "s3cret-key" not in address.shown
    assert "key={apiKey}" in address.shown


def test_the_key_is_filled_in_only_where_a_template_asks_for_it():
    connect = ConnectTemplate(auth={"callId": "{callId}"})
    (address,) = addresses("https://vh.example", "/s", profile(connect=connect), CONTEXT)
    assert "s3cret-key" not in repr(address)
