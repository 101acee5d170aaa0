"""Screening rules are data: a city health officer proposes a new version, a second one approves
it (two-person rule), declarations follow it and keep it."""
from __future__ import annotations

import json
import re
import uuid

from sqlalchemy import select

from libs.common.auth import SESSION_COOKIE, Role
from services.declaration.models import Declaration
from services.declaration.screening import DEFAULT_RULES

from .conftest import CITY, DEMO_DISTRICT, declaration, person

JSON_BODY = {"content-type": "application/json"}


def stricter(version: str) -> dict:
    """The shipped rules, plus: fatigue alone is red (a city decision during a wave)."""
    doc = json.loads(DEFAULT_RULES.read_text(encoding="utf-8"))
    doc["version"] = version
    doc["rules"].insert(0, {"id": "fatigue_wave", "result": "red", "any": ["fatigue"],
                            "label": {"vi": "Mệt mỏi trong đợt dịch", "en": "Fatigue during the wave"}})
    return doc


def city_health(mint, who: str) -> dict:  # noqa: ANN001
    return {**mint.headers(Role.HEALTH_OFFICER, CITY, username=who), **JSON_BODY}


async def test_the_city_health_department_proposes_approves_and_declarations_follow(declaration_app, mint):
    service = declaration_app
    client = service.client
    code = service.venues["main"].code
    before = await client.post("/api/declarations", json=declaration(code, person(symptoms=["fatigue"])))
    assert before.json()["declarations"][0]["result"] == "yellow"

    district = {**mint.headers(Role.HEALTH_OFFICER, DEMO_DISTRICT), **JSON_BODY}
    city_it = {**mint.headers(Role.CITY_DIC, CITY), **JSON_BODY}
    proposer, approver = city_health(mint, "syt.nghiepvu"), city_health(mint, "syt.phogiamdoc")
    for outsider in (district, city_it):
        refused = await client.post("/api/rule-sets", content=json.dumps(stricter("2021-07")), headers=outsider)
        assert refused.status_code == 403 and "Sở Y tế" in refused.json()["detail"]
    proposed = await client.post("/api/rule-sets", content=json.dumps(stricter("2021-07")), headers=proposer)
    assert proposed.status_code == 201, proposed.text
    assert proposed.json()["active"] is False and proposed.json()["state"] == "pending"
    again = await client.post("/api/rule-sets", content=json.dumps(stricter("2021-07")), headers=approver)
    assert again.status_code == 422 and "exists already" in again.json()["errors"][0]["message"]
    approved = await client.post("/api/rule-sets/2021-07/approve", headers=approver)
    assert approved.status_code == 200 and approved.json()["state"] == "active", approved.text
    assert (await client.post("/api/rule-sets/2099-01/approve", headers=approver)).status_code == 404

    after = await client.post("/api/declarations", json=declaration(code, person(symptoms=["fatigue"])))
    answer = after.json()
    assert answer["rule_version"] == "2021-07" and answer["declarations"][0]["result"] == "red"
    assert answer["declarations"][0]["reasons"] == ["fatigue_wave"]
    async with service.runtime.database.transaction(readonly=True) as session:
        versions = (await session.execute(select(Declaration.rule_version).order_by(Declaration.submitted_at))).all()
    assert [v for (v,) in versions] == ["2021-06", "2021-07"]  # each declaration keeps its version
    listed = await client.get("/api/rule-sets", headers=district)
    assert [(r["version"], r["state"]) for r in listed.json()] == [("2021-07", "active"), ("2021-06", "earlier")]
    latest = listed.json()[0]
    assert "syt.nghiepvu" in latest["proposed_by"] and "syt.phogiamdoc" in latest["approved_by"]


async def test_a_proposal_can_be_withdrawn_and_never_applies(declaration_app, mint):
    client = declaration_app.client
    proposer, other = city_health(mint, "syt.nghiepvu"), city_health(mint, "syt.phogiamdoc")
    assert (await client.post("/api/rule-sets", content=json.dumps(stricter("2021-11")),
                              headers=proposer)).status_code == 201
    withdrawn = await client.post("/api/rule-sets/2021-11/reject", headers=proposer)
    assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "rejected"
    late = await client.post("/api/rule-sets/2021-11/approve", headers=other)
    assert late.status_code == 409 and "không còn chờ phê duyệt" in late.json()["detail"]
    active = (await client.get("/api/rule-sets", headers=other)).json()
    assert [r["version"] for r in active if r["active"]] == ["2021-06"]


async def test_a_broken_rule_set_is_refused_with_the_reason(declaration_app, mint):
    client = declaration_app.client
    city = city_health(mint, "syt.nghiepvu")
    broken = stricter("2021-08")
    broken["rules"][0]["any"] = ["sneezing"]
    response = await client.post("/api/rule-sets", content=json.dumps(broken), headers=city)
    assert response.status_code == 422 and "sneezing" in response.json()["errors"][0]["message"]
    no_advice = stricter("2021-09")
    del no_advice["advice"]["red"]
    assert (await client.post("/api/rule-sets", content=json.dumps(no_advice), headers=city)).status_code == 422
    assert (await client.post("/api/rule-sets", content=b"{", headers=city)).status_code == 422
    active = (await client.get("/api/rule-sets", headers=city)).json()
    assert [r["version"] for r in active if r["active"]] == ["2021-06"]


def _csrf(page) -> str:  # noqa: ANN001
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


async def test_the_rules_page_shows_the_two_steps(declaration_app, mint):
    service = declaration_app
    client = service.client
    html = {"accept": "text/html"}
    for role, where in ((Role.HEALTH_OFFICER, DEMO_DISTRICT), (Role.CITY_DIC, CITY)):
        client.cookies.set(SESSION_COOKIE, mint.token(role, where))
        page = await client.get("/rules", headers=html)
        assert page.status_code == 200 and "Bộ tiêu chí đang hiệu lực" in page.text and "2021-06" in page.text
        assert "Đề xuất phiên bản mới" not in page.text and "do cán bộ Sở Y tế đề xuất và phê duyệt" in page.text
    client.cookies.set(SESSION_COOKIE, mint.token(Role.HEALTH_OFFICER, CITY, username="syt.nghiepvu"))
    page = await client.get("/rules", headers=html)
    token = _csrf(page)
    bad = await client.post("/rules", data={"csrf_token": token, "rules": "{}"}, headers=html)
    assert bad.status_code == 422 and "Chưa lưu bộ tiêu chí vì không hợp lệ" in bad.text
    no_token = await client.post("/rules", data={"rules": json.dumps(stricter("2021-10"))}, headers=html)
    assert no_token.status_code == 403
    done = await client.post("/rules", data={"csrf_token": token, "rules": json.dumps(stricter("2021-10"))},
                             headers=html)
    assert done.status_code == 303
    page = await client.get(done.headers["location"], headers=html)
    assert "Đã gửi đề xuất" in page.text and "Đang chờ phê duyệt" in page.text and "Rút đề xuất" in page.text
    own = await client.post("/rules/2021-10/approve", data={"csrf_token": token}, headers=html)
    assert own.status_code == 403 and "Người đề xuất không tự phê duyệt được" in own.text

    client.cookies.set(SESSION_COOKIE, mint.token(Role.HEALTH_OFFICER, CITY, username="syt.phogiamdoc"))
    page = await client.get("/rules", headers=html)
    assert "Phê duyệt và áp dụng" in page.text
    approved = await client.post("/rules/2021-10/approve", data={"csrf_token": _csrf(page)}, headers=html)
    assert approved.status_code == 303
    page = await client.get(approved.headers["location"], headers=html)
    assert "Bộ tiêu chí mới đã có hiệu lực" in page.text and "Mệt mỏi trong đợt dịch" in page.text
    assert "syt.nghiepvu" in page.text and "syt.phogiamdoc" in page.text and "Đang chờ phê duyệt" not in page.text
