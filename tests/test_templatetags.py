from __future__ import annotations

import pytest
from django.template import Context, Template
from django.test import RequestFactory

from webcall_widget.embed import InvalidSlug, script_tag


def render(source, **context):
    return Template("{% load webcall_widget %}" + source).render(Context(context))


def test_tag_renders_one_deferred_script_for_the_agent():
    assert render('{% webcall_widget "help" %}') == (
        '<script src="/static/webcall_widget/widget.js" data-agent="help" '
        'data-config="/webcall/agents/help/config" defer></script>'
    )


def test_tag_carries_the_csp_nonce_from_the_context():
    html = render('{% webcall_widget "help" %}', csp_nonce="abc123")
    assert html == (
        '<script src="/static/webcall_widget/widget.js" data-agent="help" '
        'data-config="/webcall/agents/help/config" nonce="abc123" defer></script>'
    )


def test_tag_carries_a_nonce_set_on_the_request():
    request = RequestFactory().get("/")
    request.csp_nonce = "fromrequest"  # type: ignore[attr-defined]  # as django-csp sets it
    assert 'nonce="fromrequest"' in render('{% webcall_widget "help" %}', request=request)


def test_tag_takes_the_slug_from_a_variable():
    assert 'data-agent="sales"' in render("{% webcall_widget slug %}", slug="sales")


@pytest.mark.parametrize("slug", ["", "   ", None, 3])
def test_tag_refuses_a_missing_or_odd_slug(slug):
    with pytest.raises(ValueError, match="needs an agent slug"):
        render("{% webcall_widget slug %}", slug=slug)


def test_slug_cannot_break_out_of_the_attribute():
    with pytest.raises(InvalidSlug):
        render("{% webcall_widget slug %}", slug='"><script>alert(1)</script>')


@pytest.mark.parametrize("slug", ["not a slug", "help/desk", "caf\u00e9", "help\n"])
def test_a_value_that_is_not_a_slug_is_refused_by_name(slug):
    with pytest.raises(InvalidSlug, match="needs an agent slug .* not "):
        script_tag(slug)


def test_snippet_for_other_sites_uses_absolute_urls():
    assert script_tag("help", base_url="https://django.example") == (
        '<script src="https://django.example/static/webcall_widget/widget.js" data-agent="help" '
        'data-config="https://django.example/webcall/agents/help/config" defer></script>'
    )
