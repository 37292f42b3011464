"""The admin keeps the API key write-only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from webcall_widget.models import Agent, Call, TranscriptMessage

SECRET = "sk-admin-secret-0123456789"


@pytest.fixture
def staff(admin_client):
    return admin_client


def form_data(**overrides):
    data = {
        "name": "Help desk",
        "slug": "help-desk",
        "is_active": "on",
        "voicehub_agent_id": "echo-agent",
        "api_key": SECRET,
        "modes": ["text", "TextAudio"],
        "default_mode": "text",
        "allowed_origins": "",
        "access": "anyone",
        "max_concurrent_calls": "",
        "max_calls_per_day": "",
        "max_call_seconds": "",
        "title": "",
        "subtitle": "",
        "avatar_url": "",
        "greeting": "",
        "launcher_label": "",
        "position": "bottom-right",
        "primary_color": "#1f6feb",
        "primary_text_color": "#ffffff",
    }
    data.update(overrides)
    return data


def test_new_agent_needs_a_key(staff):
    response = staff.post(reverse("admin:webcall_widget_agent_add"), form_data(api_key=""))
    assert response.status_code == 200
    assert not Agent.objects.exists()


def test_key_is_stored_when_adding(staff):
    staff.post(reverse("admin:webcall_widget_agent_add"), form_data())
    assert Agent.objects.get().api_key == SECRET


def test_change_page_never_shows_the_key(staff, agent_factory):
    agent = agent_factory(api_key=SECRET)
    page = staff.get(reverse("admin:webcall_widget_agent_change", args=[agent.pk]))
    assert page.status_code == 200
    assert SECRET not in page.content.decode()
    assert "never shown" in page.content.decode()


def test_list_page_never_shows_the_key(staff, agent_factory):
    agent_factory(api_key=SECRET)
    page = staff.get(reverse("admin:webcall_widget_agent_changelist"))
    assert SECRET not in page.content.decode()


def test_blank_key_keeps_the_stored_one(staff, agent_factory):
    agent = agent_factory(api_key=SECRET, slug="help-desk")
    url = reverse("admin:webcall_widget_agent_change", args=[agent.pk])
    response = staff.post(url, form_data(api_key="", name="Renamed"))
    assert response.status_code == 302
    agent.refresh_from_db()
    assert (agent.name, agent.api_key) == ("Renamed", SECRET)


def test_typed_key_replaces_the_stored_one(staff, agent_factory):
    agent = agent_factory(api_key=SECRET, slug="help-desk")
    url = reverse("admin:webcall_widget_agent_change", args=[agent.pk])
    staff.post(url, form_data(api_key="sk-new"))
    agent.refresh_from_db()
    assert agent.api_key == "sk-new"


def test_invalid_form_does_not_echo_the_typed_key(staff):
    response = staff.post(
        reverse("admin:webcall_widget_agent_add"), form_data(default_mode="WebAudio")
    )
    assert response.status_code == 200
    assert SECRET not in response.content.decode()


def test_history_never_records_the_key(staff, agent_factory):
    agent = agent_factory(api_key=SECRET, slug="help-desk")
    url = reverse("admin:webcall_widget_agent_change", args=[agent.pk])
    staff.post(url, form_data(api_key="sk-new"))
    history = staff.get(reverse("admin:webcall_widget_agent_history", args=[agent.pk]))
    assert "sk-new" not in history.content.decode()


def test_call_page_shows_the_transcript_read_only(staff, agent_factory):
    call = Call.objects.create(agent=agent_factory(), mode="text")
    TranscriptMessage.objects.create(call=call, seq=0, role="user", text="Where is my order?")
    page = staff.get(reverse("admin:webcall_widget_call_change", args=[call.pk]))
    assert page.status_code == 200
    assert "Where is my order?" in page.content.decode()
    assert staff.get(reverse("admin:webcall_widget_call_add")).status_code == 403


def test_agent_page_shows_the_embed_code_with_absolute_urls(staff, agent_factory):
    agent = agent_factory(slug="help-desk")
    page = staff.get(reverse("admin:webcall_widget_agent_change", args=[agent.pk])).content
    text = page.decode()
    assert "{% load webcall_widget %}{% webcall_widget &quot;help-desk&quot; %}" in text
    assert (
        "&lt;script src=&quot;http://testserver/static/webcall_widget/widget.js&quot; "
        "data-agent=&quot;help-desk&quot;" in text
    )


def test_agent_page_carries_the_widget_to_try_the_agent(staff, agent_factory):
    agent = agent_factory(slug="help-desk")
    page = staff.get(reverse("admin:webcall_widget_agent_change", args=[agent.pk])).content
    assert b'<script src="/static/webcall_widget/widget.js" data-agent="help-desk"' in page
    assert page.count(b'widget.js" data-agent') == 1  # the snippet itself is only shown


def test_add_page_has_no_embed_code_yet(staff):
    page = staff.get(reverse("admin:webcall_widget_agent_add")).content.decode()
    assert "Embed and try" not in page
