"""The bad-input catalogue (bad_input.py), text: hostile strings in every typed field of
the declaration and the registration, by API and by form, are refused naming the field;
injection payloads (SQL, script, spreadsheet formulas) are refused or kept as plain text,
shown escaped and exported to Excel without formulas.
"""
from __future__ import annotations

import io
import json
import re

import pytest
from markupsafe import escape
from openpyxl import load_workbook

from libs.common.auth import Role

from .bad_input import HTML, JSON, count, demo_venue_code, record_total, system  # noqa: F401 - system: the fixture
from .conftest import DEMO_COMMUNE, Minter, eventually, record_figure, registration

pytestmark = pytest.mark.asyncio(loop_scope="module")

SQL = ["' OR '1'='1", "'; DROP TABLE registrations; --", "1; DELETE FROM declarations", "\" OR 1=1 --",
       "Robert'); DROP TABLE venues;--"]
SCRIPT = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "\"><svg onload=alert(1)>",
          "javascript:alert(1)", "{{7*7}}{% raw %}"]
FORMULA = ["=HYPERLINK(\"http://evil.example\",\"Bấm\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
           "=1+1"]
TEXT_FIELDS = ("unit_name", "address", "contact_name", "contact_position")
# The text policy's catalogue (libs/common/text.py): strings no typed field takes. ``any``:
# refused in every kind of field; ``name``: refused in a name only. The lone surrogate can
# only come as a JSON escape (a form's percent-encoding of it is not UTF-8).
HOSTILE_TEXT = [
    ("NUL", "Nguyễn\u0000Văn An", "any"),
    ("C1 control NEL", "Nguyễn\u0085Văn An", "any"),
    ("C1 control NEL at the end", "Nguyễn Văn An\u0085", "any"),
    ("right-to-left override", "\u202eNguyễn Văn An", "any"),
    ("left-to-right isolate", "Nguyễn \u2066Văn\u2069 An", "any"),
    ("right-to-left mark", "Nguyễn\u200fVăn An", "any"),
    ("private use", "Nguyễn\ue000Văn An", "any"),
    ("unassigned code point", "Nguyễn\u0378Văn An", "any"),
    ("noncharacter", "Nguyễn\ufffeVăn An", "any"),
    ("lone surrogate", "Nguyễn\ud800Văn An", "any"),
    ("mathematical letters", "𝕳𝖊𝖑𝖑𝖔", "name"),
    ("fullwidth letters", "ＮＧＵＹＥＮ", "name"),
    ("SQL-ish punctuation", "An'; ( )", "name"),
    ("SQL injection", "Robert'); DROP TABLE venues;--", "name"),
]


def _json(body: dict) -> dict:
    """As an attacker's client sends it: JSON with \\u escapes (a lone surrogate included)."""
    return {"content": json.dumps(body).encode(), "headers": {**JSON, "content-type": "application/json"}}


def _loc_names(response) -> list[str]:  # noqa: ANN001
    return [e["field"] for e in response.json()["errors"]]  # an RFC 9457 problem's field errors


async def test_hostile_text_is_refused_naming_the_field_by_every_api_and_form(system):
    """Each string of HOSTILE_TEXT, and an unknown nationality: 422 naming the field, in
    Vietnamese and English, on the declaration API and form and the intake registration API
    and form. Nothing is stored."""
    from services.declaration.models import Declaration
    from services.intake.models import Registration

    venue_code = await demo_venue_code(system)
    declaration, intake = system["declaration"], system["intake"]

    async def known() -> bool:
        return (await declaration.get(f"/api/venues/{venue_code}")).status_code == 200

    await eventually(known, timeout=60, what="the demo venue copied by the declaration service")
    person = {"full_name": "Nguyễn Văn An", "id_number": "079099012345", "birth": "01/02/1990", "gender": "male",
              "phone": "0909 123 456", "province_code": "79", "district_code": "787", "commune_code": "27664",
              "street": "12 Lương Văn Nho"}
    form = {"count": "1", "p0.full_name": "Nguyễn Văn An", "p0.id_type": "cccd", "p0.id_number": "079099012345",
            "p0.birth": "01/02/1990", "p0.gender": "male", "p0.nationality": "Việt Nam", "p0.phone": "0909123456",
            "p0.province_code": "79", "p0.district_code": "787", "p0.commune_code": "27664",
            "p0.street": "12 Lương Văn Nho", "consent": "1", "action": "submit"}
    unit_form = {"unit_name": "Trường Mầm non Sơn Ca", "unit_type": "school", "commune": "27667",
                 "address": "5 Đường Rừng Sác", "tax_code": "", "contact_name": "Lê Thị Hoa",
                 "contact_position": "Hiệu trưởng", "contact_phone": "0909 555 666", "contact_email": "",
                 "venue_count": "2", "notes": ""}
    # (field kind, declaration field and its label, intake field and its label)
    targets = [("name", "full_name", "Họ và tên", "contact_name", "Người liên hệ"),
               ("short", "street", "Số nhà, đường", "unit_name", "Tên đơn vị"),
               ("short", "street", "Số nhà, đường", "address", "Địa chỉ")]
    cases = [(label, value, kind, target) for label, value, scope in HOSTILE_TEXT
             for kind, *target in targets if scope == "any" or kind == "name"]
    before = (await count(system, "intake", Registration), await count(system, "declaration", Declaration))
    tried = 0
    for label, value, _kind, (d_field, d_label, i_field, i_label) in cases:
        what = f"{label} in {d_field}/{i_field}"
        # The declaration API
        body = {"venue_code": venue_code, "people": [{**person, d_field: value}], "consent": True}
        response = await declaration.post("/api/declarations", **_json(body))
        assert response.status_code == 422, (what, response.status_code, response.text[:300])
        assert _loc_names(response) == [f"people.0.{d_field}"], (what, response.json())
        [error] = response.json()["errors"]
        assert error["message"].startswith(d_label), (what, error)
        # The intake registration API
        response = await intake.post("/api/registrations", **_json(registration("27664", **{i_field: value})))
        assert response.status_code == 422, (what, response.status_code, response.text[:300])
        assert _loc_names(response) == [i_field], (what, response.json())
        assert response.json()["errors"][0]["message"].startswith(i_label), (what, response.json())
        tried += 2
        if "\ud800" in value:
            continue  # no form can carry it
        # The declaration form (its key from the page) and the intake form
        page = await declaration.get(f"/v/{venue_code}", headers=HTML)
        key = re.search(r'name="key" value="([^"]+)"', page.text).group(1)
        response = await declaration.post(f"/v/{venue_code}", data={**form, f"p0.{d_field}": value, "key": key},
                                          headers=HTML)
        assert response.status_code == 422, (what, "form", response.status_code)
        assert d_label in html_text(response.text), (what, "form")
        response = await intake.post("/d/787/register", data={**unit_form, i_field: value}, headers=HTML)
        assert response.status_code == 422, (what, "intake form", response.status_code)
        assert i_label in html_text(response.text), (what, "intake form")
        tried += 2
    # An unknown nationality: the API and the form.
    body = {"venue_code": venue_code, "people": [{**person, "nationality": "Atlantis"}], "consent": True}
    response = await declaration.post("/api/declarations", json=body)
    assert response.status_code == 422 and _loc_names(response) == ["people.0.nationality"], response.text
    assert response.json()["errors"][0]["message"].startswith("Quốc tịch")
    page = await declaration.get(f"/v/{venue_code}", headers=HTML)
    key = re.search(r'name="key" value="([^"]+)"', page.text).group(1)
    response = await declaration.post(f"/v/{venue_code}", data={**form, "p0.nationality": "Atlantis", "key": key},
                                      headers=HTML)
    assert response.status_code == 422 and "Quốc tịch không phải một quốc gia" in html_text(response.text)
    tried += 2
    # A user name with a NUL (PostgreSQL cannot even compare it) names no account: 401, never a 500.
    for username in ("admin\u0000", "\u202eadmin", "admin\ud800"):
        response = await system["provisioning"].post("/api/token", **_json({"username": username, "password": "x"}))
        assert response.status_code in (401, 422), (username, response.status_code)
        tried += 1
    assert (await count(system, "intake", Registration), await count(system, "declaration", Declaration)) == before
    system.extra["tried"] += tried
    record_figure("bad input", kind="hostile text", tried=tried)


def html_text(page: str) -> str:
    import html

    return html.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.mark.slow
@pytest.mark.timeout(1800)
async def test_injection_in_every_text_field_is_stored_as_text_and_shown_escaped(system):
    """SQL and script injection, template syntax and spreadsheet formulas in each text
    field of the registration: refused with a message, or kept as plain text, shown
    escaped, and exported to Excel as text, not as a formula. The tables stay whole."""
    from services.intake.models import Registration

    minter: Minter = system.extra["minter"]
    commune = minter.headers(Role.COMMUNE_FOCAL, DEMO_COMMUNE)
    client = system["intake"]
    accepted, refused, tried = [], 0, 0
    for field in TEXT_FIELDS:
        for payload in SQL + SCRIPT + FORMULA:
            value = f"Trường {payload}" if field == "unit_name" and payload in SQL else payload
            before = await count(system, "intake", Registration)
            response = await client.post("/api/registrations", json=registration("27664", **{field: value}))
            tried += 1
            assert response.status_code in (201, 422), f"{field}={payload!r}: {response.status_code} {response.text[:200]}"
            after = await count(system, "intake", Registration)
            if response.status_code == 422:
                refused += 1
                assert after == before and response.json()["detail"], (field, payload)
            else:
                assert after == before + 1
                accepted.append((field, value, response.json()))
    # The accepted ones, as the commune focal point sees them: escaped, never live markup.
    listed = await client.get("/api/registrations", headers=commune)
    rows = listed.json() if isinstance(listed.json(), list) else listed.json()["items"]
    by_ref = {r.get("reference"): r for r in rows}
    shown = 0
    for field, value, created in accepted:
        row = by_ref.get(created.get("reference"))
        assert row is not None, created
        page = await client.get(f"/registrations/{row['id']}", headers={**HTML, **commune})
        assert page.status_code == 200
        if any(c in value for c in "<>\"'&"):
            if "<" in value or ">" in value:
                assert value not in page.text, (field, value)   # never live markup
            assert str(escape(value)) in page.text, (field, value)   # shown, as text
            shown += 1
    # Exported to Excel: text, never a formula that a spreadsheet would run.
    export = await client.get("/registrations.xlsx", headers={**HTML, **commune})
    assert export.status_code == 200
    sheet = load_workbook(io.BytesIO(export.content)).active
    formulas = [c.coordinate for row in sheet.iter_rows() for c in row if c.data_type == "f"]
    assert not formulas, formulas
    for row in sheet.iter_rows(values_only=True):
        for cell in row:
            assert not (isinstance(cell, str) and cell[:1] in "=+@" and cell.lstrip("=+@")[:3].isalpha()), cell
    # SQL text did nothing: the tables are all there and count every registration.
    assert await count(system, "intake", Registration) == len(accepted)
    record_figure("bad input", kind="injection", tried=tried, refused=refused, accepted_as_text=len(accepted),
                  shown_escaped=shown)
    system.extra["tried"] += tried


async def test_zz_figures(system):
    """The total of the text inputs (runs last in this module)."""
    record_total(system, __file__, at_least=135)
