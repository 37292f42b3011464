"""Who may talk to an agent: one rule (webcall_widget.access) for the create-call view and the
relay socket, which refuses with its own close code, 4406."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from tests.conftest import create_call, socket_path
from tests.relay.test_consumer import refusal
from webcall_widget import access
from webcall_widget.models import Access
from webcall_widget.relay.protocol import CloseCode
from webcall_widget.strings import ERRORS


@pytest.fixture
def user_factory(db):
    def make(name, **fields):
        return get_user_model().objects.create_user(name, password="pw", **fields)

    return make


@pytest.mark.parametrize("user", [None, AnonymousUser()])
def test_an_agent_open_to_anyone_takes_anyone(user):
    assert access.refusal(Access.ANYONE, user) is None


@pytest.mark.parametrize("agent_access", [Access.AUTHENTICATED, Access.STAFF])
@pytest.mark.parametrize("user", [None, AnonymousUser()])
def test_a_visitor_who_is_not_logged_in_is_asked_to_log_in(agent_access, user):
    assert access.refusal(agent_access, user) == "login_required"


def test_a_logged_in_user_may_talk_to_an_agent_for_logged_in_users(user_factory):
    assert access.refusal(Access.AUTHENTICATED, user_factory("ann")) is None


def test_a_staff_only_agent_refuses_a_logged_in_user_who_is_not_staff(user_factory):
    assert access.refusal(Access.STAFF, user_factory("ann")) == "staff_only"


def test_a_staff_only_agent_takes_staff(user_factory):
    assert access.refusal(Access.STAFF, user_factory("ann", is_staff=True)) is None


def test_a_call_of_another_user_is_refused_as_not_logged_in(user_factory):
    owner, other = user_factory("owner"), user_factory("other")
    assert access.call_refusal(Access.AUTHENTICATED, other, owner.pk) == "login_required"


def test_the_user_who_created_the_call_may_hold_it(user_factory):
    owner = user_factory("owner")
    assert access.call_refusal(Access.AUTHENTICATED, owner, owner.pk) is None


def test_a_call_open_to_anyone_is_anyones(user_factory):
    assert access.call_refusal(Access.ANYONE, AnonymousUser(), None) is None


def test_every_refusal_has_visitor_words():
    assert {"login_required", "staff_only", "access_denied"} <= ERRORS.keys()


def test_the_access_close_code_is_no_other_codes_alias():
    assert CloseCode(4406).name == "ACCESS_DENIED"


@pytest.mark.django_db(transaction=True)
async def test_a_socket_of_a_user_who_is_not_staff_is_refused_with_staff_only_and_4406(
    sandbox, agent_factory, user_factory, async_client, open_socket
):
    agent = await database_sync_to_async(agent_factory)(access=Access.STAFF)
    staff = await database_sync_to_async(user_factory)("boss", is_staff=True)
    await database_sync_to_async(async_client.force_login)(staff)
    response = await create_call(async_client, agent.slug)
    assert response.status_code == 201, response.content
    await database_sync_to_async(get_user_model().objects.filter(pk=staff.pk).update)(
        is_staff=False
    )
    staff.is_staff = False  # demoted between creating the call and opening its socket
    socket = open_socket(socket_path(response))
    socket.scope["user"] = staff
    assert await refusal(socket) == ("staff_only", CloseCode.ACCESS_DENIED)
