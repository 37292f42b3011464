from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from tests.factories import build_agent
from webcall_widget.models import Call


def test_valid_agent_passes_validation(db):
    build_agent().full_clean()


def test_default_mode_must_be_allowed(db):
    with pytest.raises(ValidationError) as caught:
        build_agent(modes=["text"], default_mode="WebAudio").full_clean()
    assert "default_mode" in caught.value.message_dict


@pytest.mark.parametrize("modes", [[], ["Text"], "text", None])
def test_modes_must_be_a_non_empty_list_of_known_modes(db, modes):
    with pytest.raises(ValidationError) as caught:
        build_agent(modes=modes).clean()
    assert "modes" in caught.value.message_dict


def test_allowed_origins_must_be_origins(db):
    with pytest.raises(ValidationError) as caught:
        build_agent(allowed_origins="https://ok.example\nnot an origin").full_clean()
    assert "allowed_origins" in caught.value.message_dict


def test_colours_must_be_hex(db):
    with pytest.raises(ValidationError) as caught:
        build_agent(primary_color="red").full_clean()
    assert "primary_color" in caught.value.message_dict


def test_call_ids_are_unguessable_uuids(agent_factory):
    a = agent_factory()
    first, second = (
        Call.objects.create(agent=a, mode="text"),
        Call.objects.create(agent=a, mode="text"),
    )
    assert first.id != second.id and first.id.version == 4


def test_agent_with_calls_cannot_be_deleted(agent_factory):
    from django.db.models import ProtectedError

    a = agent_factory()
    Call.objects.create(agent=a, mode="text")
    with pytest.raises(ProtectedError):
        a.delete()


def test_str_of_agent_never_shows_the_key(db):
    assert "k3y" not in str(build_agent(api_key="k3y")) + repr(build_agent(api_key="k3y"))
