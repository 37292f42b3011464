from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core import signing
from django.db import connection

from webcall_widget.models import Call, CallStatus
from webcall_widget.relay import tokens


def test_token_names_the_call_it_was_issued_for():
    call_id = uuid.uuid4()
    assert tokens.read(tokens.issue(call_id), max_age=60) == call_id


def test_token_does_not_contain_the_call_id_in_clear_form_only():
    call_id = uuid.uuid4()
    token = tokens.issue(call_id)
    assert ":" in token  # value:timestamp:signature


def test_expired_token_is_refused(monkeypatch):
    token = tokens.issue(uuid.uuid4())
    with pytest.raises(tokens.TokenError, match="expired"):
        tokens.read(token, max_age=-1)


def test_tampered_token_is_refused():
    token = tokens.issue(uuid.uuid4())
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(tokens.TokenError, match="not valid"):
        tokens.read(forged, max_age=60)


def test_token_signed_for_another_purpose_is_refused():
    other = signing.dumps(uuid.uuid4().hex, salt="something-else")
    with pytest.raises(tokens.TokenError, match="not valid"):
        tokens.read(other, max_age=60)


@pytest.mark.parametrize("garbage", ["", "x", "a:b:c", "%%%", "é" * 50])
def test_garbage_is_refused(garbage):
    with pytest.raises(tokens.TokenError):
        tokens.read(garbage, max_age=60)


def test_signed_value_that_is_not_a_call_id_is_refused():
    token = signing.dumps("not-a-uuid", salt=tokens.SALT)
    with pytest.raises(tokens.TokenError):
        tokens.read(token, max_age=60)


def test_first_claim_wins_and_second_loses(agent):
    call = Call.objects.create(agent=agent, mode="text")
    assert tokens.claim(call.id) is True
    assert tokens.claim(call.id) is False
    call.refresh_from_db()
    assert call.status == CallStatus.CONNECTING
    assert call.connected_at is not None


def test_claim_of_an_unknown_call_loses(db):
    assert tokens.claim(uuid.uuid4()) is False


@pytest.mark.django_db(transaction=True)
def test_exactly_one_of_many_concurrent_claims_wins(agent_factory):
    call = Call.objects.create(agent=agent_factory(), mode="text")
    connection.close()

    def attempt(_: int) -> bool:
        try:
            return tokens.claim(call.id)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(attempt, range(16)))
    assert results.count(True) == 1


def test_a_resume_token_given_back_resumes_again_and_only_once(agent):
    """A socket that claimed a resume and could not take the call up (Redis did not answer)
    gives the token back: the visitor's next try with it wins, and only that one."""
    call = Call.objects.create(agent=agent, mode="text", status=CallStatus.LIVE)
    grant = tokens.Grant(call.pk, "https://site.example", 0)
    claimed = tokens.claim_resume(grant)
    assert claimed is not None
    assert tokens.give_back(claimed)
    assert tokens.claim_resume(grant) == claimed
    assert tokens.claim_resume(grant) is None


def test_a_resume_token_is_not_given_back_once_the_call_moved_on(agent):
    call = Call.objects.create(agent=agent, mode="text", status=CallStatus.LIVE)
    claimed = tokens.claim_resume(tokens.Grant(call.pk, "", 0))
    assert claimed is not None
    assert tokens.claim_resume(claimed) is not None  # another socket resumed it since
    assert not tokens.give_back(claimed)
