"""A visitor's error message is written once (webcall_widget.strings.ERRORS), found by its code,
and reads the same over HTTP and on the relay socket, in the visitor's language."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.utils import translation

from tests.conftest import create_call, socket_path
from tests.relay.test_consumer import next_json
from webcall_widget import access
from webcall_widget.models import Access, Agent
from webcall_widget.relay.protocol import CloseCode
from webcall_widget.strings import ERRORS, visitor_message
from webcall_widget.voicehub import errors

VOICEHUB = Path(errors.__file__).parent


def imported_modules(source: Path) -> set[str]:
    tree = ast.parse(source.read_text(), filename=str(source))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("source", sorted(VOICEHUB.glob("*.py")), ids=lambda p: p.name)
def test_the_voicehub_package_imports_nothing_from_djangos_translation(source):
    translation_imports = {
        name for name in imported_modules(source) if name.startswith("django.utils.translation")
    }
    assert translation_imports == set()


def every_voicehub_error() -> list[type[errors.VoiceHubError]]:
    found, todo = [], [errors.VoiceHubError]
    while todo:
        kind = todo.pop()
        found.append(kind)
        todo.extend(kind.__subclasses__())
    return found


@pytest.mark.parametrize("error", every_voicehub_error(), ids=lambda e: e.__name__)
def test_every_voicehub_error_code_has_visitor_words(error):
    assert error.code in ERRORS


# A code is passed as this argument of these callables, or follows a CloseCode in a tuple.
CODE_ARGUMENT = {
    "visitor_message": 0,
    "visitor_error": 1,
    "error_frame": 0,
    "ProtocolError": 0,
    "LimitExceeded": 0,
}


def codes_sent(source: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            index = CODE_ARGUMENT.get(str(name))
            if index is not None and len(node.args) > index:
                argument = node.args[index]
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                    found.add(argument.value)
        elif isinstance(node, ast.Tuple) and len(node.elts) == 2:
            close, code = node.elts
            if (
                isinstance(close, ast.Attribute)
                and getattr(close.value, "id", None) == "CloseCode"
                and isinstance(code, ast.Constant)
                and isinstance(code.value, str)
            ):
                found.add(code.value)
    return found


APP = VOICEHUB.parent
APP_SOURCES = sorted(p for p in APP.rglob("*.py") if "sandbox" not in p.relative_to(APP).parts)


def test_every_error_code_the_app_sends_has_visitor_words():
    sent = set().union(*(codes_sent(source) for source in APP_SOURCES), get_args(access.Refusal))
    assert {"origin_not_allowed", "login_required", "rate_limited", "bad_token"} <= sent
    assert sorted(sent - ERRORS.keys()) == []


@pytest.mark.parametrize(
    "close_code",
    [c for c in CloseCode if c not in (CloseCode.NORMAL, CloseCode.MOVING)],
    ids=lambda c: c.name,
)
def test_every_close_code_names_an_error_with_visitor_words(close_code):
    """The widget shows a closed socket's error by the close code's name (but for a normal
    close, and for MOVING, after which it resumes without a word)."""
    assert close_code.name.lower().removesuffix("_4xxx") in ERRORS


def test_the_message_is_in_the_active_language():
    with translation.override("fr"):
        french = visitor_message("origin_not_allowed")
    assert french == "Cet assistant ne peut pas être utilisé sur ce site."


def test_an_unknown_code_is_an_error_not_a_silent_message():
    with pytest.raises(KeyError):
        visitor_message("no_such_code")


def test_a_refused_create_call_speaks_the_visitors_language(agent, client):
    response = client.post(
        f"/webcall/agents/{agent.slug}/calls",
        data="{}",
        content_type="application/json",
        HTTP_ORIGIN="https://evil.example",
        HTTP_ACCEPT_LANGUAGE="fr",
    )
    with translation.override("fr"):
        expected = visitor_message("origin_not_allowed")
    assert response.json()["error"]["message"] == expected


# the same code, over HTTP and on the socket


def http_error(response) -> tuple[str, str]:
    error = response.json()["error"]
    return error["code"], error["message"]


async def socket_error(socket) -> tuple[str, str]:
    connected, _ = await socket.connect(timeout=5)
    assert connected
    error = await next_json(socket)
    assert error["type"] == "error", error
    return error["code"], error["message"]


@pytest.mark.django_db(transaction=True)
async def test_origin_not_allowed_reads_the_same_over_http_and_on_the_socket(
    sandbox, agent, async_client, open_socket
):
    over_http = http_error(
        await create_call(async_client, agent.slug, origin="https://evil.example")
    )
    created = await create_call(async_client, agent.slug)
    on_socket = await socket_error(
        open_socket(socket_path(created), origin="https://evil.example")
    )
    assert over_http == on_socket == ("origin_not_allowed", visitor_message("origin_not_allowed"))


@pytest.mark.django_db(transaction=True)
async def test_login_required_reads_the_same_over_http_and_on_the_socket(
    sandbox, agent_factory, async_client, open_socket
):
    agent = await database_sync_to_async(agent_factory)(access=Access.AUTHENTICATED)
    over_http = http_error(await create_call(async_client, agent.slug))
    owner = await database_sync_to_async(get_user_model().objects.create_user)("owner")
    await database_sync_to_async(async_client.force_login)(owner)
    created = await create_call(async_client, agent.slug)
    on_socket = await socket_error(open_socket(socket_path(created)))  # no user on it
    assert over_http == on_socket == ("login_required", visitor_message("login_required"))


@pytest.mark.django_db(transaction=True)
async def test_agent_disabled_reads_the_same_over_http_and_on_the_socket(
    sandbox, agent, async_client, open_socket
):
    created = await create_call(async_client, agent.slug)
    await database_sync_to_async(Agent.objects.filter(pk=agent.pk).update)(is_active=False)
    over_http = http_error(await create_call(async_client, agent.slug))
    on_socket = await socket_error(open_socket(socket_path(created)))
    assert over_http == on_socket == ("agent_disabled", visitor_message("agent_disabled"))


def test_a_malformed_request_has_the_visitor_words_and_an_english_detail(agent, client):
    response = client.post(
        f"/webcall/agents/{agent.slug}/calls",
        data='{"mode": "fax"}',
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="fr",
    )
    with translation.override("fr"):
        expected = visitor_message("invalid_request")
    assert response.json()["error"] == {
        "code": "invalid_request",
        "message": expected,
        "detail": "mode must be one of text, WebAudio, TextAudio.",
    }
