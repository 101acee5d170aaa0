"""Registration spam at the public edge (services/intake/registration/spam.py): a burst from one address
is refused beyond the per-address limit and what got in waits apart, as suspected spam; the
hidden field flags a robot; a tax code or e-mail with registrations waiting takes no more;
the commune discards a batch of suspected spam in one click and reporting's funnel counts
them as returned; a genuine unit from another address is unaffected. On both backends."""
from __future__ import annotations

import asyncio
import html
import re

import httpx
import pytest

from libs.common.auth import Role
from services.intake.settings import IntakeSettings
from services.intake.registration.spam import HONEYPOT_FIELD
from tests.services.conftest import eventually

from .conftest import (
    DEMO_COMMUNE,
    DEMO_DISTRICT,
    FAST,
    OTHER_COMMUNE,
    Browser,
    build_settings,
    headers,
    registration,
    run_services,
)

# The production defaults (the shared test settings switch the spam checks off).
SPAM_DEFAULTS = {name: IntakeSettings.model_fields[name].default for name in (
    "registrations_per_address_hour", "pending_per_tax_code", "pending_per_email", "spam_burst_count",
    "spam_burst_seconds", "spam_venue_count", "spam_same_name", "max_form_venues")}
ATTACKER, HONEYPOT_BOT, GENUINE = "203.0.113.66", "198.51.100.23", "192.0.2.10"
FORM = {"unit_type": "essential_shop", "commune": "27664", "address": "5 Đường Lương Văn Nho", "tax_code": "",
        "contact_name": "Lê Thị Hoa", "contact_position": "", "contact_phone": "0909 555 666", "contact_email": "",
        "venue_count": "2", "notes": ""}


@pytest.fixture
async def system(backend, keys):
    """Intake and reporting on SQLite + the embedded bus, and on PostgreSQL + Kafka (where a
    concurrent burst is serialised by advisory locks, not by SQLite's writer lock)."""
    settings = {}
    for service in ("intake", "reporting"):
        settings[service] = build_settings(
            service, keys, database_url=await backend.database_url(service), bus_url=backend.bus_url,
            bus_namespace=backend.bus_options().get("namespace", ""), **FAST,
            **(SPAM_DEFAULTS if service == "intake" else {}))
    async with run_services(settings) as running:
        yield running


def from_address(running, address: str) -> httpx.AsyncClient:  # noqa: ANN001
    """A client of the intake app seen from ``address`` (the request's client host)."""
    transport = httpx.ASGITransport(app=running.apps["intake"], raise_app_exceptions=False, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://intake.test")


def text_of(page) -> str:  # noqa: ANN001
    return html.unescape(re.sub(r"<[^>]+>", " ", page.text))


def references(page) -> set[str]:  # noqa: ANN001
    return set(re.findall(r"DK\d{6}-[0-9A-Z]{6}", page.text))


async def test_a_burst_is_limited_flagged_shown_apart_and_discarded_in_one_click(system, mint):
    intake = system["intake"]
    async with from_address(system, ATTACKER) as attacker, from_address(system, HONEYPOT_BOT) as bot, \
            from_address(system, GENUINE) as genuine:
        # The finding: 500 venues a registration. The form takes at most 200 for one unit.
        refused = await attacker.post("/d/787/register", data={**FORM, "unit_name": "Cửa hàng A0", "venue_count": "500"})
        assert refused.status_code == 422
        assert "Biểu mẫu nhận tối đa 200 địa điểm cho một đơn vị" in text_of(refused)

        # 30 registrations at once from one address, each claiming 150 venues.
        burst = await asyncio.gather(*(attacker.post("/d/787/register", data={
            **FORM, "unit_name": f"Cửa hàng Spam số {n}", "venue_count": "150"}) for n in range(30)))
        statuses = sorted(r.status_code for r in burst)
        assert statuses == [303] * 10 + [429] * 20, statuses
        limited = next(r for r in burst if r.status_code == 429)
        assert "Đã có quá nhiều đăng ký gửi từ địa chỉ mạng này trong một giờ qua" in text_of(limited)
        assert "liên hệ UBND phường/xã" in text_of(limited) and limited.headers["retry-after"] == "3600"

        # A robot fills the hidden field: answered like anyone, kept, flagged.
        robot = await bot.post("/d/787/register", data={**FORM, "unit_name": "Tiệm tạp hóa Hoa Mai",
                                                         HONEYPOT_FIELD: "http://spam.example"})
        assert robot.status_code == 303 and robot.headers["location"].endswith("?done=registered")
        # A genuine unit from another address is unaffected.
        real = await genuine.post("/d/787/register", data={**FORM, "unit_name": "Nhà thuốc Cần Thạnh"})
        assert real.status_code == 303
    robot_ref = re.search(r"DK\d{6}-[0-9A-Z]{6}", robot.headers["location"]).group(0)
    real_ref = re.search(r"DK\d{6}-[0-9A-Z]{6}", real.headers["location"]).group(0)
    spam_refs = {re.search(r"DK\d{6}-[0-9A-Z]{6}", r.headers["location"]).group(0)
                 for r in burst if r.status_code == 303} | {robot_ref}

    commune = Browser(intake, mint, Role.COMMUNE_FOCAL, DEMO_COMMUNE)
    queue = await commune.get("/?status=submitted")
    assert references(queue) == {real_ref}, references(queue)
    assert "11 đăng ký nghi ngờ spam đang chờ riêng" in text_of(queue)
    api = (await intake.get("/api/registrations?status=submitted",
                            headers=headers(mint, Role.COMMUNE_FOCAL, DEMO_COMMUNE))).json()
    assert [r["reference"] for r in api] == [real_ref]

    spam = await commune.get("/spam")
    assert spam.status_code == 200 and references(spam) == spam_refs
    text = text_of(spam)
    assert "Nghi ngờ spam" in text and text.count("Số địa điểm bất thường") == 10
    assert text.count("Nhiều đăng ký từ cùng một địa chỉ mạng trong thời gian ngắn") == 6   # the 5th to the 10th
    assert text.count("Điền vào trường ẩn của biểu mẫu") == 1
    assert real_ref not in spam.text
    # The district sees them too; a commune elsewhere neither sees nor discards them.
    district = Browser(intake, mint, Role.DISTRICT_FOCAL, DEMO_DISTRICT)
    assert references(await district.get("/spam")) == spam_refs
    other = Browser(intake, mint, Role.COMMUNE_FOCAL, OTHER_COMMUNE)
    assert references(await other.get("/spam")) == set()
    ids = re.findall(r'name="registration_id" value="([0-9a-f-]{36})"', spam.text)
    assert len(ids) == 11 and spam.text.count(" checked aria-label") == 11
    nothing = await other.post("/spam/discard", {"registration_id": ids}, csrf_from="/spam")
    assert nothing.status_code == 303 and nothing.headers["location"].endswith("n=0")
    without_token = await intake.post("/spam/discard", data={"registration_id": ids}, headers=commune.headers)
    assert without_token.status_code == 403

    # One click: every row is ticked.
    discarded = await commune.post("/spam/discard", {"registration_id": ids}, csrf_from="/spam")
    assert discarded.status_code == 303 and discarded.headers["location"] == "/spam?done=discarded&n=11"
    after = await commune.get(discarded.headers["location"])
    assert references(after) == set() and "Đã loại bỏ: 11" in text_of(after)
    assert "Không có đăng ký nghi ngờ spam trong địa bàn" in text_of(after)
    assert "nghi ngờ spam đang chờ riêng" not in text_of(await commune.get("/"))
    one = await commune.get(f"/registrations/{ids[0]}")
    assert "Loại bỏ vì nghi ngờ spam" in text_of(one) and "Đã trả lại" in text_of(one)
    assert "Nghi ngờ spam, loại bỏ: Số địa điểm bất thường" in text_of(one)     # the history, with who
    status = await intake.get(robot.headers["location"].split("?")[0])
    assert "Bị trả lại" in text_of(status) and "nghi ngờ gửi tự động (spam)" in text_of(status)
    assert "liên hệ UBND phường/xã" in text_of(status) and "trường ẩn" not in text_of(status)
    again = await commune.post("/spam/discard", {"registration_id": ids}, csrf_from="/spam")
    assert again.headers["location"].endswith("n=0")

    from services.reporting.handlers import funnel_counts

    reporting = system.runtime("reporting")

    async def counted():
        async with reporting.database.transaction(readonly=True) as session:
            counts = (await funnel_counts(session, DEMO_DISTRICT)).get(DEMO_COMMUNE, {})
        return counts if counts.get("returned") == 11 else None

    counts = await eventually(counted, timeout=30, what="the discarded registrations in reporting's funnel")
    assert counts["submitted"] == 12 and counts["accepted"] == 0


async def test_a_tax_code_or_e_mail_with_registrations_waiting_takes_no_more(system, mint):
    commune = headers(mint, Role.COMMUNE_FOCAL, DEMO_COMMUNE)
    made = []
    for n in range(4):
        async with from_address(system, f"192.0.2.{20 + n}") as client:
            made.append(await client.post("/api/registrations", json=registration(
                "27664", "company", f"Công ty TNHH Chi nhánh {n}", tax_code="0301234567",
                contact_email=f"cn{n}@example.vn")))
    assert [r.status_code for r in made] == [201, 201, 201, 429]
    detail = made[3].json()["detail"]
    assert "Mã số thuế 0301234567 đã có 3 đăng ký đang chờ duyệt trong 24 giờ qua" in detail
    assert "liên hệ UBND phường/xã" in detail
    # Once one is reviewed, the unit may register again.
    accepted = await system["intake"].post(f"/api/registrations/{made[0].json()['id']}/accept", headers=commune)
    assert accepted.status_code == 200
    async with from_address(system, "192.0.2.30") as client:
        again = await client.post("/api/registrations", json=registration(
            "27664", "company", "Công ty TNHH Chi nhánh 4", tax_code="0301234567", contact_email="cn4@example.vn"))
        assert again.status_code == 201

    answers = []
    for n in range(6):
        async with from_address(system, f"192.0.2.{40 + n}") as client:
            answers.append(await client.post("/api/registrations", json=registration(
                "27667", "business", f"Cơ sở kinh doanh {n}", contact_email="ketoan@example.vn")))
    assert [r.status_code for r in answers] == [201] * 5 + [429]
    assert "E-mail ketoan@example.vn đã có 5 đăng ký đang chờ duyệt" in answers[5].json()["detail"]

    # The same name again in the commune is kept but waits apart.
    async with from_address(system, "192.0.2.60") as client:
        first = await client.post("/api/registrations", json=registration("27664", "school", "Trường Mầm non Hoa Sen",
                                                                          contact_email="hs1@example.vn"))
    async with from_address(system, "192.0.2.61") as client:
        second = await client.post("/api/registrations", json=registration("27664", "school", "Trường Mầm non Hoa Sen",
                                                                           contact_email="hs2@example.vn"))
    assert first.status_code == second.status_code == 201
    page = await Browser(system["intake"], mint, Role.COMMUNE_FOCAL, DEMO_COMMUNE).get("/spam")
    assert references(page) == {second.json()["reference"]}
    assert "Trùng tên với đăng ký khác trong phường/xã" in text_of(page)
    detail_page = await Browser(system["intake"], mint, Role.COMMUNE_FOCAL, DEMO_COMMUNE).get(
        f"/registrations/{second.json()['id']}")
    assert "Nghi ngờ spam" in text_of(detail_page)
    # A suspected registration the focal point accepts joins the normal queue.
    assert (await system["intake"].post(f"/api/registrations/{second.json()['id']}/accept",
                                        headers=commune)).status_code == 200
    page = await Browser(system["intake"], mint, Role.COMMUNE_FOCAL, DEMO_COMMUNE).get("/spam")
    assert references(page) == set()


async def test_the_form_hides_its_extra_field_from_people(system):
    form = await system["intake"].get("/d/787/register")
    match = re.search(r'<div class="field field--extra" aria-hidden="true">.*?</div>', form.text, re.S)
    assert match, form.text
    assert f'name="{HONEYPOT_FIELD}"' in match.group(0) and 'tabindex="-1"' in match.group(0)
    assert 'autocomplete="off"' in match.group(0)
    assert 'max="200"' in form.text and "từ 1 đến 200" in text_of(form)
