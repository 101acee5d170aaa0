"""An idempotency key is bound to its request, on both backends (SQLite and PostgreSQL).

The same key with the same declaration answers the first answer again (200, ``duplicate``);
the same key with another person or venue is refused (409) and the answer carries nothing
of the first: neither its names nor a pass. Concurrent first sends of one key: one stored,
the other answered as a duplicate (same body) or refused (another body).
"""
from __future__ import annotations

import asyncio
import json
import re
import uuid

import pytest
from sqlalchemy import func, select, update

from libs.common.auth import SESSION_COOKIE, Role
from services.declaration.models import Declaration, Submission

from .conftest import DEMO_COMMUNE, declaration, person

FIRST = "Nguyễn Văn An"


async def _count(service, model) -> int:  # noqa: ANN001
    async with service.runtime.database.transaction(readonly=True) as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


def assert_nothing_of_the_first(response) -> None:  # noqa: ANN001
    assert response.status_code == 409, response.text
    text = response.text
    assert FIRST not in text and "Nguy" not in text and "KB1." not in text and "079099012345" not in text
    [problem] = response.json()["errors"]
    assert problem["type"] == "key_reused" and problem["field"] == "idempotency_key"
    assert "đã được dùng" in problem["message"]


async def test_the_same_key_answers_the_first_only_for_the_same_request(declaration_on):
    service = declaration_on
    main, side = service.venues["main"].code, service.venues["side"].code
    key = "k-" + uuid.uuid4().hex
    body = declaration(main, person(), key=key)
    first = await service.client.post("/api/declarations", json=body)
    assert first.status_code == 201, first.text
    # The same declaration again (also re-serialised: other key order and spacing): the first answer.
    again = await service.client.post("/api/declarations", content=json.dumps(dict(reversed(body.items())),
                                                                             indent=2, ensure_ascii=False),
                                      headers={"content-type": "application/json"})
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["declarations"] == first.json()["declarations"]
    assert again.headers["cache-control"] == "no-store"
    # Another person, another venue, one more person, or other health answers: refused.
    others = [
        declaration(main, person(full_name="Trần Thị Bình", id_number="079199054321", phone="0912 345 678"), key=key),
        declaration(side, person(), key=key),
        declaration(main, person(), person(full_name="Lê Văn Cư", id_number="123456789", birth="1950"), key=key),
        declaration(main, person(symptoms=["fever"]), key=key),
    ]
    for other in others:
        assert_nothing_of_the_first(await service.client.post("/api/declarations", json=other))
    assert await _count(service, Declaration) == 1 and await _count(service, Submission) == 1


async def test_concurrent_first_sends_of_one_key(declaration_on):
    service = declaration_on
    main = service.venues["main"].code
    for _ in range(3):
        key = "c-" + uuid.uuid4().hex
        same = declaration(main, person(), key=key)
        answers = await asyncio.gather(*(service.client.post("/api/declarations", json=same) for _ in range(2)))
        assert sorted(a.status_code for a in answers) == [200, 201], [a.text for a in answers]
        assert answers[0].json()["declarations"] == answers[1].json()["declarations"]
    for _ in range(3):
        key = "d-" + uuid.uuid4().hex
        bodies = [declaration(main, person(), key=key),
                  declaration(main, person(full_name="Trần Thị Bình", id_number="079199054321"), key=key)]
        answers = await asyncio.gather(*(service.client.post("/api/declarations", json=b) for b in bodies))
        assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
        stored, refused = sorted(answers, key=lambda a: a.status_code)
        name = stored.json()["declarations"][0]["full_name"]
        assert name not in refused.text and "KB1." not in refused.text
    assert await _count(service, Submission) == 6 and await _count(service, Declaration) == 6


async def test_a_key_stored_before_digests_were_kept_is_never_answered(declaration_on):
    """A submission without a digest (stored before migration 0004) gives nothing out."""
    service = declaration_on
    key = "old-" + uuid.uuid4().hex
    body = declaration(service.venues["main"].code, key=key)
    assert (await service.client.post("/api/declarations", json=body)).status_code == 201
    async with service.runtime.database.transaction() as session:
        await session.execute(update(Submission).where(Submission.key == key).values(digest=None))
    assert_nothing_of_the_first(await service.client.post("/api/declarations", json=body))


FORM = {"count": "1", "p0.full_name": FIRST, "p0.id_type": "cccd", "p0.id_number": "079099012345",
        "p0.birth": "01/02/1990", "p0.gender": "male", "p0.nationality": "Việt Nam", "p0.phone": "0909123456",
        "p0.province_code": "79", "p0.district_code": "787", "p0.commune_code": "27664",
        "p0.street": "12 Lương Văn Nho", "consent": "1", "action": "submit"}


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
async def test_the_forms_refuse_a_key_sent_with_other_details(declaration_on, mint):
    """Back, a change, Send again: the public form and the gate's assisted form show the
    form again with a new key and a message, never the first result; the same form twice
    still shows the first result."""
    service = declaration_on
    venue = service.venues["main"]
    html = {"accept": "text/html"}
    key = "f-" + uuid.uuid4().hex[:20]
    first = await service.client.post(f"/v/{venue.code}", data={**FORM, "key": key}, headers=html)
    assert first.status_code == 303
    twice = await service.client.post(f"/v/{venue.code}", data={**FORM, "key": key}, headers=html)
    assert twice.status_code == 303 and "dup=1" in twice.headers["location"]
    assert twice.headers["location"].split("?")[0] == first.headers["location"].split("?")[0]
    changed = {**FORM, "key": key, "p0.full_name": "Trần Thị Bình", "p0.id_number": "079199054321"}
    page = await service.client.post(f"/v/{venue.code}", data=changed, headers=html)
    assert page.status_code == 409 and "đã được gửi trước đó với thông tin khác" in page.text
    assert FIRST not in page.text and "Trần Thị Bình" in page.text  # the form keeps what was typed
    new_key = re.search(r'name="key" value="([^"]+)"', page.text).group(1)
    assert new_key != key
    resent = await service.client.post(f"/v/{venue.code}", data={**changed, "key": new_key}, headers=html)
    assert resent.status_code == 303 and "dup=1" not in resent.headers["location"]
    # The gate's assisted declaration: the same rule.
    token = mint.token(Role.GATE_STAFF, DEMO_COMMUNE, unit_id=str(venue.unit_id))
    service.client.cookies.set(SESSION_COOKIE, token)
    try:
        url = f"/gate/{venue.venue_id}/declare"
        form_page = await service.client.get(url, headers=html)
        csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', form_page.text).group(1)
        gate_key = "g-" + uuid.uuid4().hex[:20]
        done = await service.client.post(url, data={**FORM, "key": gate_key, "csrf_token": csrf}, headers=html)
        assert done.status_code == 200 and FIRST in done.text
        refused = await service.client.post(url, data={**changed, "key": gate_key, "csrf_token": csrf}, headers=html)
        assert refused.status_code == 409 and "đã được gửi trước đó với thông tin khác" in refused.text
        assert FIRST not in refused.text and "KB1." not in refused.text
    finally:
        service.client.cookies.clear()
    assert await _count(service, Submission) == 3
