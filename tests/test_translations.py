"""The widget's words are translated, and the compiled catalogs match their sources."""

from __future__ import annotations

import pytest
from django.utils import translation

from webcall_widget.strings import ERRORS, UI, widget_strings


@pytest.mark.parametrize("language", ["fr", "ar"])
def test_every_widget_string_is_translated(language):
    strings = {**UI, **ERRORS}
    with translation.override("en"):
        english = {key: str(text) for key, text in strings.items()}
    with translation.override(language):
        untranslated = [key for key, text in strings.items() if str(text) == english[key]]
    same_in_french = {"messageLabel", "transcript"}  # Message, Conversation
    assert [key for key in untranslated if not (language == "fr" and key in same_in_french)] == []


def test_right_to_left_language_is_reported_as_such():
    with translation.override("ar"):
        assert translation.get_language_bidi()
    with translation.override("fr"):
        assert not translation.get_language_bidi()


def test_config_is_served_in_the_page_language(agent, client):
    config = client.get(f"/webcall/agents/{agent.slug}/config?lang=fr").json()
    assert config["language"] == "fr" and config["dir"] == "ltr"
    assert config["strings"]["ui"]["send"] == "Envoyer"
    arabic = client.get(f"/webcall/agents/{agent.slug}/config?lang=ar").json()
    assert arabic["dir"] == "rtl"


def test_unknown_page_language_falls_back_to_the_site_language(agent, client):
    config = client.get(f"/webcall/agents/{agent.slug}/config?lang=xx-YY").json()
    assert config["language"] == "en"
    assert config["strings"]["ui"] == widget_strings()["ui"]


def test_regional_variant_uses_the_base_language(agent, client):
    assert client.get(f"/webcall/agents/{agent.slug}/config?lang=fr-CA").json()["language"] == "fr"
