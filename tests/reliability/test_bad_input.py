"""The bad-input catalogue: hostile inputs over the public forms, the sign-in, the consoles,
the JSON APIs and the uploads. Each is a clear 4xx (a message, never a 500), nothing is
stored, and text that is accepted is shown escaped and exported without formulas.

Data-driven: every entry of the catalogue below is one input tried; the count goes to the
figures table (bench/reliability.py).
"""
from __future__ import annotations

import io
import json
import re
import time
import zipfile

import pytest
import pytest_asyncio
from markupsafe import escape
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from libs.common.auth import SESSION_COOKIE, Role
from libs.common.demo import DEMO_ACCOUNTS, DEMO_PASSWORD
from libs.common.settings import SERVICES

from .conftest import (
    CITY,
    DEMO_COMMUNE,
    DEMO_DISTRICT,
    Minter,
    build_settings,
    eventually,
    make_keys,
    record_figure,
    registration,
    run_services,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

HTML = {"accept": "text/html"}
JSON = {"accept": "application/json"}
MB = 1024 * 1024

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


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def system(tmp_path_factory):
    keys = make_keys(tmp_path_factory.mktemp("bad-input") / "data")
    settings = {s: build_settings(s, keys, demo=s == "provisioning") for s in SERVICES}
    async with run_services(settings) as running:
        running.extra["minter"] = Minter(keys.private)
        running.extra["tried"] = 0
        yield running


async def count(system, service: str, model) -> int:  # noqa: ANN001
    async with system.runtime(service).database.transaction(readonly=True) as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


def clear_4xx(response, what: str) -> None:  # noqa: ANN001
    assert 400 <= response.status_code < 500, f"{what}: {response.status_code} {response.text[:200]}"
    text = response.text
    assert text.strip(), f"{what}: an empty answer"
    if response.headers.get("content-type", "").startswith("application/json"):
        detail = response.json().get("detail")
        assert detail, f"{what}: no detail"
    # No echo of a secret or of raw hostile markup
    assert "<script>alert(1)</script>" not in text, what


def _json(body: dict) -> dict:
    """As an attacker's client sends it: JSON with \\u escapes (a lone surrogate included)."""
    return {"content": json.dumps(body).encode(), "headers": {**JSON, "content-type": "application/json"}}


def _loc_names(response) -> list[str]:  # noqa: ANN001
    return [".".join(str(p) for p in e["loc"]) for e in response.json()["detail"]]


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
        [error] = response.json()["detail"]
        assert error["msg"].startswith(d_label) and error["msg_en"], (what, error)
        # The intake registration API
        response = await intake.post("/api/registrations", **_json(registration("27664", **{i_field: value})))
        assert response.status_code == 422, (what, response.status_code, response.text[:300])
        assert _loc_names(response) == [f"body.{i_field}"], (what, response.json())
        assert response.json()["detail"][0]["msg"].startswith(i_label), (what, response.json())
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
    assert response.json()["detail"][0]["msg"].startswith("Quốc tịch")
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


async def test_oversized_wrong_type_and_invalid_utf8_bodies(system):
    from services.declaration.models import Declaration
    from services.intake.models import Registration

    venue_code = await demo_venue_code(system)
    targets = [  # (service, method, url, kind)
        ("intake", "POST", "/api/registrations", "json"),
        ("intake", "POST", "/d/787/register", "form"),
        ("intake", "POST", "/status", "form"),
        ("declaration", "POST", "/api/declarations", "json"),
        ("declaration", "POST", f"/v/{venue_code}", "form"),
        ("provisioning", "POST", "/signin", "form"),
        ("provisioning", "POST", "/api/token", "json"),
    ]
    bodies = {
        "oversized json": (b'{"unit_name": "' + b"A" * (3 * MB) + b'"}', "application/json"),
        "oversized form": (b"full_name=" + b"A" * (3 * MB), "application/x-www-form-urlencoded"),
        "deeply nested json": (b"[" * 50000 + b"]" * 50000, "application/json"),
        "xml": (b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'a'>]><x>&a;</x>", "application/xml"),
        "text": (b"unit_name=Nguyen", "text/plain"),
        "no content type": (b'{"a": 1}', ""),
        "invalid utf-8 json": (b'{"unit_name": "\xff\xfe\xc3\x28"}', "application/json"),
        "invalid utf-8 form": (b"full_name=\xff\xfe\xc3\x28&username=\xc0\xaf", "application/x-www-form-urlencoded"),
        "nul bytes": (b'{"unit_name": "a\\u0000b"}', "application/json"),
        "broken multipart": (b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n", "multipart/form-data; boundary=x"),
        "multipart without boundary": (b"abc", "multipart/form-data"),
        "json array": (b"[1,2,3]", "application/json"),
        "bad percent-encoding": (b"full_name=%ZZ%&phone=%", "application/x-www-form-urlencoded"),
    }
    before = (await count(system, "intake", Registration), await count(system, "declaration", Declaration))
    tried = 0
    for service, method, url, _ in targets:
        for name, (body, content_type) in bodies.items():
            headers = {**JSON, **({"content-type": content_type} if content_type else {})}
            system[service].cookies.clear()
            response = await system[service].request(method, url, content=body, headers=headers)
            clear_4xx(response, f"{service} {url} {name}")
            tried += 1
    assert (await count(system, "intake", Registration), await count(system, "declaration", Declaration)) == before
    system.extra["tried"] += tried


async def demo_venue_code(system) -> str:  # noqa: ANN001
    from services.provisioning.models import Venue

    async with system.runtime("provisioning").database.transaction(readonly=True) as session:
        return (await session.execute(select(Venue))).scalars().first().code


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


def xlsx(sheet_name: str = "Danh sách", rows: int = 3) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = sheet_name
    for i in range(rows):
        sheet.append([i + 1, f"Đơn vị {i}", "=1+1"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def zip_of(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.slow
@pytest.mark.timeout(1800)
async def test_malformed_excel_uploads_are_refused_and_nothing_imported(system):
    from services.intake.models import Registration, Upload

    minter: Minter = system.extra["minter"]
    district = minter.headers(Role.DISTRICT_FOCAL, DEMO_DISTRICT)
    good = xlsx()
    files = {
        "empty": b"",
        "not a zip": b"Day khong phai tep Excel" * 100,
        "truncated xlsx": good[: len(good) // 2],
        "zip without workbook": zip_of({"hello.txt": b"xin chao"}),
        "zip bomb": zip_of({"xl/worksheets/sheet1.xml": b"<" + b"a" * (60 * MB)}),
        "nested zip": zip_of({"inner.zip": zip_of({"a.txt": b"a" * MB})}),
        "wrong sheet": xlsx("Sheet khác"),
        "pdf renamed": b"%PDF-1.7\n" + b"x" * 500,
        "old xls": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 4000,
        "huge": b"PK\x03\x04" + b"\0" * (12 * MB),
    }
    tried = 0
    for name, content in files.items():
        uploads_before = await count(system, "intake", Upload)
        registrations_before = await count(system, "intake", Registration)
        response = await system["intake"].post("/api/imports", headers=district,
                                               files={"file": (f"{name}.xlsx", content, "application/octet-stream")})
        tried += 1
        if response.status_code == 202:
            # Accepted for checking: the background check must then refuse it, importing nothing.
            upload_id = response.json()["id"]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                status = (await system["intake"].get(f"/api/imports/{upload_id}", headers=district)).json()
                if status.get("status") not in ("received", "checking", "queued", "pending"):
                    break
                await _sleep(0.2)
            assert status.get("status") not in ("approved", "imported", "done"), (name, status)
            assert await count(system, "intake", Registration) == registrations_before, name
            continue
        clear_4xx(response, f"upload {name}")
        assert await count(system, "intake", Upload) == uploads_before, name
        assert await count(system, "intake", Registration) == registrations_before, name
    system.extra["tried"] += tried
    record_figure("bad input", kind="excel", tried=tried)


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def test_malformed_qr_payloads_at_the_gate(system):
    from services.declaration.models import GateEntry

    minter: Minter = system.extra["minter"]
    from services.provisioning.models import Venue

    async with system.runtime("provisioning").database.transaction(readonly=True) as session:
        venue = (await session.execute(select(Venue))).scalars().first()
    gate = minter.headers(Role.GATE_STAFF, DEMO_COMMUNE, unit_id=str(venue.unit_id))
    payloads = ["", " ", "KB1.", "KB1." + "A" * 5000, "KB1.ZZZZ.G.0.0", "KB1...", "\x00\x01\x02", "ü" * 300,
                "079185012345|", "|" * 200, "<script>alert(1)</script>", "' OR 1=1 --", "KB1.%00.G", "\ud7ff" * 10,
                json.dumps({"qr": "x"}), "9" * 100000]
    before = await count(system, "declaration", GateEntry)
    tried = 0
    for payload in payloads:
        response = await system["declaration"].post("/api/passes/verify", json={"code": payload}, headers=gate)
        tried += 1
        assert response.status_code < 500, (payload[:40], response.status_code)
        if response.status_code == 200:
            assert response.json()["outcome"] in ("forged", "unreadable", "expired"), (payload[:40], response.json())
        else:
            clear_4xx(response, f"qr {payload[:20]!r}")
    for body in (b"", b"{", b'{"code": 5}', b'{"code": null}', b"\xff\xfe"):
        response = await system["declaration"].post("/api/passes/verify", content=body,
                                                     headers={**gate, "content-type": "application/json"})
        tried += 1
        clear_4xx(response, f"qr body {body!r}")
    assert await count(system, "declaration", GateEntry) == before
    system.extra["tried"] += tried
    record_figure("bad input", kind="qr", tried=tried)


async def test_forged_replayed_and_brute_forced_credentials(system):
    import jwt

    minter: Minter = system.extra["minter"]
    client = system["provisioning"]
    valid = minter.token(Role.CITY_DIC, CITY)
    claims = jwt.decode(valid, options={"verify_signature": False})
    expired = minter.token(Role.CITY_DIC, CITY, ttl_seconds=60, now=time.time() - 7200)
    tokens = {
        "unsigned": jwt.encode(claims, key=None, algorithm="none"),
        "hs256 with the public key": jwt.encode(claims, "khaibao", algorithm="HS256"),
        "replayed after expiry": expired,
        "garbage": "a.b.c",
        "truncated": valid[:-5],
    }
    tried = 0
    for name, token in tokens.items():
        for service in SERVICES:
            response = await system[service].get("/", headers={**JSON, "authorization": f"Bearer {token}"})
            assert response.status_code == 401, (name, service, response.status_code)
            tried += 1
    # A CSRF token of another session, replayed with this one: refused.
    from libs.common.csrf import token_for

    other = minter.token(Role.CITY_DIC, CITY)
    secret = system.settings["provisioning"].secret_key
    response = await client.post("/password", data={"csrf_token": token_for(secret, other), "current": "x",
                                                    "new": "y", "confirm": "y"},
                                 headers=HTML, cookies={SESSION_COOKIE: valid})
    client.cookies.clear()
    assert response.status_code == 403
    tried += 1
    # Brute force: after the free failures this address is throttled: even the right password
    # gets the generic answer, unchecked (the owner elsewhere is not: test_signin_abuse.py).
    username = DEMO_ACCOUNTS[2][0]
    statuses = []
    for attempt in range(8):
        response = await client.post("/signin", data={"username": username, "password": f"doan-sai-{attempt}"},
                                     headers=HTML)
        client.cookies.clear()
        statuses.append(response.status_code)
        assert response.status_code in (401, 429), response.status_code
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
        tried += 1
    locked = await client.post("/signin", data={"username": username, "password": DEMO_PASSWORD}, headers=HTML)
    client.cookies.clear()
    tried += 1
    assert locked.status_code in (401, 429) and "không đúng" in locked.text.lower(), locked.text[:300]
    assert SESSION_COOKIE not in locked.headers.get("set-cookie", "")
    api = await client.post("/api/token", json={"username": username, "password": DEMO_PASSWORD})
    tried += 1
    assert api.status_code in (401, 429), api.status_code
    system.extra["tried"] += tried
    record_figure("bad input", kind="credentials", tried=tried)


HUGE = "743760874107273234874368"  # beyond a 64-bit integer: SQLite cannot bind it
PAGING = [
    ("intake", "/api/registrations", {"offset": HUGE}),
    ("provisioning", "/api/units", {"page": HUGE}),
    ("provisioning", "/api/units", {"page": "-1"}),
    ("reporting", "/api/access-log", {"offset": HUGE}),
    ("reporting", "/api/access-log", {"limit": HUGE}),
]


@pytest.mark.parametrize(("service", "path", "params"), PAGING)
async def test_paging_beyond_any_page_is_a_clear_4xx(system, service, path, params):
    """Found by Schemathesis' long run: huge page numbers crashed the SQL driver (500)."""
    token = system.extra["minter"].token(Role.CITY_DIC, CITY)
    response = await system[service].get(path, params=params,
                                         headers={**JSON, "authorization": f"Bearer {token}"})
    system.extra["tried"] += 1
    clear_4xx(response, f"{service} {path} {params}")


async def test_zz_figures(system):
    """The total of the catalogue (runs last in this module)."""
    record_figure("bad input", kind="total", tried=system.extra["tried"], server_errors=0, stored=0)
    assert system.extra["tried"] >= 150
