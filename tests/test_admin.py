"""The admin keeps the API key write-only."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from webcall_widget.models import (
    Agent,
    AnalysisState,
    Call,
    CallAnalysis,
    Limit,
    LimitHit,
    TranscriptMessage,
    WebhookEvent,
    WebhookEventState,
)

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
        "max_call_minutes_per_day": "",
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


def test_agent_page_keeps_the_widget_off_the_form(staff, agent_factory):
    agent = agent_factory(slug="help-desk")
    page = staff.get(reverse("admin:webcall_widget_agent_change", args=[agent.pk])).content
    assert b'<script src="/static/webcall_widget/widget.js"' not in page  # only shown as a snippet


def test_add_page_has_no_embed_code_yet(staff):
    page = staff.get(reverse("admin:webcall_widget_agent_add")).content.decode()
    assert "Embed and try" not in page


def test_call_minute_budget_is_set_per_agent(staff, agent_factory):
    agent = agent_factory(slug="help-desk")
    url = reverse("admin:webcall_widget_agent_change", args=[agent.pk])
    assert staff.post(url, form_data(max_call_minutes_per_day="300")).status_code == 302
    agent.refresh_from_db()
    assert agent.max_call_minutes_per_day == 300


def test_agent_page_shows_the_limits_reached_today(staff, agent_factory):
    agent = agent_factory()
    now = timezone.now()
    today = now.astimezone(dt.UTC).date()
    LimitHit.objects.create(
        agent=agent, day=today, limit=Limit.MINUTES_PER_DAY, count=3, last_at=now
    )
    LimitHit.objects.create(
        agent=agent,
        day=today - dt.timedelta(days=1),
        limit=Limit.CONCURRENT,
        count=9,
        last_at=now - dt.timedelta(days=1),
    )
    page = staff.get(reverse("admin:webcall_widget_agent_change", args=[agent.pk]))
    text = page.content.decode()
    assert "call minutes per day: 3 refusals, last at" in text
    assert "calls open at once" not in text  # yesterday's
    listing = staff.get(reverse("admin:webcall_widget_agent_changelist")).content.decode()
    assert "call minutes per day: 3" in listing


def test_agent_page_says_when_no_limit_was_reached(staff, agent_factory):
    agent = agent_factory()
    page = staff.get(reverse("admin:webcall_widget_agent_change", args=[agent.pk]))
    assert "no call was refused today" in page.content.decode()


def test_limits_reached_are_listed_read_only(staff, agent_factory):
    hit = LimitHit.objects.create(
        agent=agent_factory(name="Help desk"),
        day=timezone.now().date(),
        limit=Limit.UNCONNECTED,
        count=7,
        last_at=timezone.now(),
        last_client_key="2001:db8::/64",
    )
    listing = staff.get(reverse("admin:webcall_widget_limithit_changelist")).content.decode()
    assert "unconnected calls per client" in listing and "2001:db8::/64" in listing
    assert staff.get(reverse("admin:webcall_widget_limithit_add")).status_code == 403
    change = reverse("admin:webcall_widget_limithit_change", args=[hit.pk])
    assert staff.post(change, {"count": "0"}).status_code == 403


KEY_FROM_A_DOCUMENT = "sk-admin\u2019secret-0123456789"  # a typographic apostrophe


def test_key_with_a_character_that_cannot_be_sent_is_refused_with_a_clear_message(staff):
    response = staff.post(
        reverse("admin:webcall_widget_agent_add"), form_data(api_key=KEY_FROM_A_DOCUMENT)
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert not Agent.objects.exists()
    assert "U+2019 RIGHT SINGLE QUOTATION MARK" in page
    assert "printable ASCII" in page
    assert KEY_FROM_A_DOCUMENT not in page


@pytest.mark.parametrize("key", ["sk-two words", "sk-tab\there", "sk-non\u00a0breaking"])
def test_key_with_a_space_or_control_character_inside_is_refused(staff, key):
    response = staff.post(reverse("admin:webcall_widget_agent_add"), form_data(api_key=key))
    assert response.status_code == 200
    assert not Agent.objects.exists()


def test_agent_id_with_a_typographic_dash_is_refused(staff):
    response = staff.post(
        reverse("admin:webcall_widget_agent_add"), form_data(voicehub_agent_id="echo\u2013agent")
    )
    assert response.status_code == 200
    assert not Agent.objects.exists()
    assert "U+2013 EN DASH" in response.content.decode()


def test_a_stored_key_kept_blank_is_not_checked_again(staff, agent_factory):
    agent = agent_factory(api_key=SECRET, slug="help-desk")
    url = reverse("admin:webcall_widget_agent_change", args=[agent.pk])
    assert staff.post(url, form_data(api_key="")).status_code == 302


def test_agent_pages_hide_the_posted_key_from_error_reports(staff):
    response = staff.post(reverse("admin:webcall_widget_agent_add"), form_data())
    request = response.wsgi_request
    assert "api_key" in request.sensitive_post_parameters
    assert request.exception_reporter_filter.is_active(request)  # with DEBUG on too


# after the call: webhooks, analyses


WEBHOOK_SECRET = "whsec-admin-0123456789"


def test_webhook_secret_is_stored_and_never_shown(staff, agent_factory):
    agent = agent_factory(slug="help-desk")
    url = reverse("admin:webcall_widget_agent_change", args=[agent.pk])
    response = staff.post(url, form_data(api_key="", webhook_secret=WEBHOOK_SECRET))
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.webhook_secret == WEBHOOK_SECRET
    page = staff.get(url).content.decode()
    assert WEBHOOK_SECRET not in page
    assert "A secret is stored and is never shown" in page


def test_blank_webhook_secret_keeps_the_stored_one(staff, agent_factory):
    agent = agent_factory(slug="help-desk", webhook_secret=WEBHOOK_SECRET)
    url = reverse("admin:webcall_widget_agent_change", args=[agent.pk])
    staff.post(url, form_data(api_key="", webhook_secret=""))
    agent.refresh_from_db()
    assert agent.webhook_secret == WEBHOOK_SECRET


def test_a_short_webhook_secret_is_refused(staff):
    response = staff.post(
        reverse("admin:webcall_widget_agent_add"), form_data(webhook_secret="short")
    )
    assert response.status_code == 200
    assert "at least 16 characters" in response.content.decode()
    assert not Agent.objects.exists()


def test_agent_page_shows_the_webhook_url_to_paste_into_voicehub(staff, agent_factory):
    agent = agent_factory(slug="help-desk")
    page = staff.get(reverse("admin:webcall_widget_agent_change", args=[agent.pk]))
    assert "http://testserver/webcall/agents/help-desk/webhook" in page.content.decode()


def call_with_analysis(agent, **analysis):
    call = Call.objects.create(
        agent=agent,
        mode="text",
        voicehub_call_id="vh-1",
        upstream_url="https://voicehub.example",
        voicehub_status="completed",
        recordings=["recordings/1.wav", "https://cdn.example/2.mp3", "javascript:alert(1)"],
    )
    fields = {
        "summary": "Asked about a refund.",
        "sentiment_label": "negative",
        "sentiment_score": 0.2,
        "main_topics": ["refund", "delivery"],
        "resolution_status": "resolved",
        **analysis,
    }
    CallAnalysis.objects.create(
        agent=agent,
        call=call,
        analysis_id=f"an-{call.pk}",
        source_url="https://voicehub.example/analysis/1",
        state=AnalysisState.FETCHED,
        fetched_at=timezone.now(),
        raw={"summary": fields["summary"]},
        **fields,
    )
    return call


def test_call_page_shows_the_analysis(staff, agent):
    call = call_with_analysis(agent)
    page = staff.get(reverse("admin:webcall_widget_call_change", args=[call.pk])).content.decode()
    for shown in ["Asked about a refund.", "negative (0.2)", "refund, delivery", "resolved"]:
        assert shown in page
    assert "completed" in page


def test_call_page_links_the_recordings_it_can_and_shows_the_others_as_text(staff, agent):
    call = call_with_analysis(agent)
    page = staff.get(reverse("admin:webcall_widget_call_change", args=[call.pk])).content.decode()
    assert 'href="https://voicehub.example/recordings/1.wav"' in page
    assert 'href="https://cdn.example/2.mp3"' in page
    assert 'href="javascript:' not in page and "javascript:alert(1)" in page


def test_call_page_says_when_no_analysis_came_yet(staff, agent):
    call = Call.objects.create(agent=agent, mode="text")
    page = staff.get(reverse("admin:webcall_widget_call_change", args=[call.pk])).content.decode()
    assert "VoiceHub sends it after the call" in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sentiment=negative", ["refund"]),
        ("resolution=unresolved", ["login"]),
        ("topic=delivery", ["refund"]),
    ],
)
def test_call_list_filters_by_the_analysis(staff, agent, query, expected):
    refund = call_with_analysis(agent)
    login = call_with_analysis(
        agent,
        summary="Could not log in.",
        sentiment_label="positive",
        main_topics=["login"],
        resolution_status="unresolved",
    )
    names = {refund.pk: "refund", login.pk: "login"}
    page = staff.get(reverse("admin:webcall_widget_call_changelist") + "?" + query)
    shown = [names[c.pk] for c in page.context["cl"].result_list]
    assert shown == expected


def test_an_event_waiting_for_its_call_can_be_processed_again_from_the_admin(staff, agent):
    event = WebhookEvent.objects.create(
        agent=agent,
        event_id="ev-1",
        event_type="CallStatusChanged",
        voicehub_call_id="vh-1",
        payload={"eventType": "CallStatusChanged", "status": "busy", "callId": "vh-1"},
        state=WebhookEventState.UNMATCHED,
    )
    call = Call.objects.create(agent=agent, mode="text", voicehub_call_id="vh-1")
    response = staff.post(
        reverse("admin:webcall_widget_webhookevent_changelist"),
        {"action": "process_events_again", "_selected_action": [str(event.pk)]},
    )
    assert response.status_code == 302
    event.refresh_from_db()
    call.refresh_from_db()
    assert (event.state, event.call, call.voicehub_status) == ("processed", call, "busy")


def test_webhook_event_page_shows_the_payload_as_it_came(staff, agent):
    event = WebhookEvent.objects.create(
        agent=agent, event_id="ev-1", event_type="Mystery", payload={"note": "<b>hi</b>"}
    )
    page = staff.get(reverse("admin:webcall_widget_webhookevent_change", args=[event.pk]))
    assert "&quot;note&quot;: &quot;&lt;b&gt;hi&lt;/b&gt;&quot;" in page.content.decode()


def test_failed_analyses_can_be_fetched_again_from_the_admin(staff, agent):
    analysis = CallAnalysis.objects.create(
        agent=agent,
        analysis_id="an-1",
        source_url="https://voicehub.example/a/1",
        state=AnalysisState.FAILED,
        error="timed out",
    )
    CallAnalysis.objects.filter(pk=analysis.pk).update(
        queued_at=timezone.now() - dt.timedelta(days=1)
    )
    asked = timezone.now()
    response = staff.post(
        reverse("admin:webcall_widget_callanalysis_changelist"),
        {"action": "fetch_again", "_selected_action": [str(analysis.pk)]},
    )
    assert response.status_code == 302
    analysis.refresh_from_db()
    assert (analysis.state, analysis.error) == (AnalysisState.PENDING, "")
    assert analysis.queued_at >= asked  # expire_webcalls leaves it to this fetch


def end_selected(staff, *calls):
    return staff.post(
        reverse("admin:webcall_widget_call_changelist"),
        {"action": "end_calls", "_selected_action": [str(c.pk) for c in calls]},
        follow=True,
    )


def test_ending_selected_calls_asks_each_live_one(staff, agent):
    live = Call.objects.create(agent=agent, mode="text", status="live")
    ended = Call.objects.create(agent=agent, mode="text", status="ended")
    response = end_selected(staff, live, ended)
    assert response.status_code == 200
    assert [str(m) for m in response.context["messages"]] == ["Asked 1 live call to end."]


def test_ending_calls_while_the_channel_layer_is_down_says_so_and_is_no_server_error(
    staff, agent, settings
):
    """A real Redis client against a port nobody listens on: Redis restarting."""
    from tests.servers import free_port

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{free_port()}/0"]},
        }
    }
    live = Call.objects.create(agent=agent, mode="text", status="live")
    response = end_selected(staff, live)
    assert response.status_code == 200
    assert [str(m) for m in response.context["messages"]] == [
        "Could not ask 1 live call to end: the channel layer (Redis) did not answer. "
        "Try again in a moment."
    ]
    assert Call.objects.get(pk=live.pk).status == "live"
