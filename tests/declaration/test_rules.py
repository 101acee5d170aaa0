"""Screening rules are data: the city publishes a new version, declarations follow it and keep it."""
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


async def test_the_city_publishes_a_rule_set_and_declarations_follow_it(declaration_app, mint):
    service = declaration_app
    client = service.client
    code = service.venues["main"].code
    before = await client.post("/api/declarations", json=declaration(code, person(symptoms=["fatigue"])))
    assert before.json()["declarations"][0]["result"] == "yellow"

    district = {**mint.headers(Role.DISTRICT_FOCAL, DEMO_DISTRICT), **JSON_BODY}
    city = {**mint.headers(Role.CITY_DIC, CITY), **JSON_BODY}
    refused = await client.post("/api/rule-sets", content=json.dumps(stricter("2021-07")), headers=district)
    assert refused.status_code == 403
    published = await client.post("/api/rule-sets", content=json.dumps(stricter("2021-07")), headers=city)
    assert published.status_code == 201, published.text
    assert published.json()["active"] is True and published.json()["version"] == "2021-07"
    again = await client.post("/api/rule-sets", content=json.dumps(stricter("2021-07")), headers=city)
    assert again.status_code == 422 and "exists already" in again.json()["detail"][0]["msg"]

    after = await client.post("/api/declarations", json=declaration(code, person(symptoms=["fatigue"])))
    answer = after.json()
    assert answer["rule_version"] == "2021-07" and answer["declarations"][0]["result"] == "red"
    assert answer["declarations"][0]["reasons"] == ["fatigue_wave"]
    async with service.runtime.database.transaction(readonly=True) as session:
        versions = (await session.execute(select(Declaration.rule_version).order_by(Declaration.submitted_at))).all()
    assert [v for (v,) in versions] == ["2021-06", "2021-07"]  # each declaration keeps its version
    listed = await client.get("/api/rule-sets", headers=district)
    assert [(r["version"], r["active"]) for r in listed.json()] == [("2021-07", True), ("2021-06", False)]


async def test_a_broken_rule_set_is_refused_with_the_reason(declaration_app, mint):
    client = declaration_app.client
    city = {**mint.headers(Role.CITY_DIC, CITY), **JSON_BODY}
    broken = stricter("2021-08")
    broken["rules"][0]["any"] = ["sneezing"]
    response = await client.post("/api/rule-sets", content=json.dumps(broken), headers=city)
    assert response.status_code == 422 and "sneezing" in response.json()["detail"][0]["msg"]
    no_advice = stricter("2021-09")
    del no_advice["advice"]["red"]
    assert (await client.post("/api/rule-sets", content=json.dumps(no_advice), headers=city)).status_code == 422
    assert (await client.post("/api/rule-sets", content=b"{", headers=city)).status_code == 422
    active = (await client.get("/api/rule-sets", headers=city)).json()
    assert [r["version"] for r in active if r["active"]] == ["2021-06"]


async def test_the_rules_page_shows_the_active_set_and_lets_the_city_publish(declaration_app, mint):
    service = declaration_app
    client = service.client
    html = {"accept": "text/html"}
    client.cookies.set(SESSION_COOKIE, mint.token(Role.HEALTH_OFFICER, DEMO_DISTRICT))
    page = await client.get("/rules", headers=html)
    assert page.status_code == 200 and "Bộ tiêu chí đang hiệu lực" in page.text and "2021-06" in page.text
    assert "Ban hành phiên bản mới" not in page.text
    client.cookies.set(SESSION_COOKIE, mint.token(Role.CITY_DIC, CITY, username=f"city.{uuid.uuid4().hex[:4]}"))
    page = await client.get("/rules", headers=html)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    bad = await client.post("/rules", data={"csrf_token": token, "rules": "{}"}, headers=html)
    assert bad.status_code == 422 and "Chưa lưu bộ tiêu chí vì không hợp lệ" in bad.text
    no_token = await client.post("/rules", data={"rules": json.dumps(stricter("2021-10"))}, headers=html)
    assert no_token.status_code == 403
    done = await client.post("/rules", data={"csrf_token": token, "rules": json.dumps(stricter("2021-10"))},
                             headers=html)
    assert done.status_code == 303
    page = await client.get(done.headers["location"], headers=html)
    assert "Bộ tiêu chí mới đã có hiệu lực" in page.text and "Mệt mỏi trong đợt dịch" in page.text
