"""The gate console's offline support on the server side: the installable app (manifest and
service worker), the shell without personal data, the session's token for a page opened from
the shell, and the queued assisted declarations stored exactly once.

The browser test (tests/browser/test_gate_offline.py) runs the whole offline shift.
"""
from __future__ import annotations

import uuid

from sqlalchemy import func, select

from libs.common.auth import Role
from services.declaration.models import Declaration

from .conftest import UNIT_B
from .test_gate import HTML, csrf, entries, gate_page, sign_in, values

FORM = {"p0.full_name": "Nguyễn Văn An", "p0.id_number": "079190001234", "p0.birth": "12/03/1990",
        "p0.gender": "male", "p0.phone": "0912 345 678", "p0.district_code": "787", "p0.commune_code": "27664",
        "p0.street": "12 Lương Văn Nho", "consent": "1", "action": "submit"}


async def test_the_gate_console_is_installable(declaration_app):
    service = declaration_app
    worker = await service.client.get("/gate/sw.js")
    assert worker.status_code == 200 and worker.headers["content-type"].startswith("text/javascript")
    assert worker.headers["service-worker-allowed"] == "/gate" and "importScripts" in worker.text
    manifest = (await service.client.get("/gate/manifest.webmanifest")).json()
    assert (manifest["start_url"], manifest["scope"], manifest["display"]) == ("/gate", "/gate", "standalone")
    assert manifest["name"] == "Cổng khai báo y tế"
    for icon in manifest["icons"]:
        assert (await service.client.get(icon["src"])).status_code == 200, icon


async def test_the_kept_shell_holds_no_personal_data(declaration_app, mint):
    service = declaration_app
    venue = service.venues["main"]
    assert (await service.client.get(f"/gate/{venue.venue_id}/shell", headers=HTML)).status_code in (302, 303)
    sign_in(service, mint)
    token = csrf(await gate_page(service, venue))
    reported = await service.client.post(f"/gate/{venue.venue_id}/case", headers=HTML, data={
        "csrf_token": token, "full_name": "Lê Văn Tám", "symptoms": ["fever"], "note": "Sốt"})
    assert reported.status_code == 303
    assert "Lê Văn Tám" in await gate_page(service, venue)
    shell = await service.client.get(f"/gate/{venue.venue_id}/shell", headers=HTML)
    assert shell.status_code == 200 and 'data-shell="1"' in shell.text
    assert "Lê Văn Tám" not in shell.text and "Sốt" not in shell.text
    assert shell.headers["cache-control"] == "no-store"  # kept by the service worker, not by HTTP caches
    assert 'rel="manifest"' in shell.text and "gate_queue.js" in shell.text


async def test_a_queued_declaration_is_stored_once_and_answers_the_result(declaration_app, mint):
    service = declaration_app
    venue = service.venues["main"]
    sign_in(service, mint)
    token = csrf(await gate_page(service, venue))
    session = await service.client.get("/api/gate/session")
    assert session.status_code == 200 and session.json() == {"csrf_token": token}
    blank = values((await service.client.get(f"/gate/{venue.venue_id}/declare", headers=HTML)).text)
    blank.pop("csrf_token", None)
    fields = [[k, v] for k, v in {**blank, **FORM, "key": "off" + uuid.uuid4().hex}.items()]
    url = f"/api/gate/{venue.venue_id}/declarations"
    headers = {"x-csrf-token": token}
    first = await service.client.post(url, json={"fields": fields}, headers=headers)
    assert first.status_code == 201, first.text
    [answer] = first.json()["declarations"]
    assert answer["result"] == "green" and len(answer["ref"]) == 8 and first.json()["admitted"] == 1
    # Sent again (the answer was lost on the way back): the first answer, nothing stored twice.
    again = await service.client.post(url, json={"fields": fields}, headers=headers)
    assert again.status_code == 200 and again.json()["declarations"] == first.json()["declarations"]
    async with service.runtime.database.transaction(readonly=True) as db:
        assert (await db.execute(select(func.count()).select_from(Declaration))).scalar_one() == 1
    assert [str(e.declaration_id) for e in await entries(service)] == [answer["id"]]
    assert again.json()["counts"]["entries"] == 1 and again.json()["counts"]["green"] == 1
    # The same key with other details: refused, in the staff's language, as problem+json.
    other = [[k, "Trần Thị Bình" if k == "p0.full_name" else v] for k, v in fields]
    refused = await service.client.post(url, json={"fields": other}, headers=headers)
    assert refused.status_code == 409 and refused.headers["content-type"] == "application/problem+json"
    invalid = [[k, "123" if k == "p0.phone" else v] for k, v in fields if k != "key"] + [["key", "off" + "1" * 20]]
    answer = await service.client.post(url, json={"fields": invalid}, headers=headers)
    assert answer.status_code == 422 and "p0.phone" in answer.json()["errors"]
    assert answer.json()["title"].startswith("Tờ khai không được chấp nhận")
    # A form body is refused on the API (JSON only), as is a missing CSRF token.
    assert (await service.client.post(url, data={"fields": "x"}, headers=headers)).status_code == 415
    assert (await service.client.post(url, json={"fields": fields})).status_code == 403
    # Another unit's venue, and no session (expired while offline: the page asks to sign in again).
    other_venue = f"/api/gate/{service.venues['other'].venue_id}/declarations"
    assert (await service.client.post(other_venue, json={"fields": fields}, headers=headers)).status_code == 403
    service.client.cookies.clear()
    assert (await service.client.get("/api/gate/session")).status_code == 401
    assert (await service.client.post(url, json={"fields": fields}, headers=headers)).status_code == 401


async def test_only_gate_roles_get_the_session_token(declaration_app, mint):
    service = declaration_app
    sign_in(service, mint, role=Role.COMMUNE_FOCAL, unit=None)
    assert (await service.client.get("/api/gate/session")).status_code == 403
    sign_in(service, mint, unit=UNIT_B)
    assert (await service.client.get("/api/gate/session")).status_code == 200
