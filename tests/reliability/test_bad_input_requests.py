"""The bad-input catalogue (bad_input.py), requests: oversized, wrongly typed and invalid
UTF-8 bodies on every public form and API, malformed Excel uploads, malformed QR payloads
at the gate and page numbers beyond any page: each a clear 4xx (or a refusal the gate
shows), nothing stored or imported.
"""
from __future__ import annotations

import asyncio
import io
import json
import time
import zipfile

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from libs.common.auth import Role

from .bad_input import (  # noqa: F401 - system: the fixture
    JSON, MB, clear_4xx, count, demo_venue_code, record_total, system,
)
from .conftest import CITY, DEMO_COMMUNE, DEMO_DISTRICT, Minter, record_figure

pytestmark = pytest.mark.asyncio(loop_scope="module")


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
                await asyncio.sleep(0.2)
            assert status.get("status") not in ("approved", "imported", "done"), (name, status)
            assert await count(system, "intake", Registration) == registrations_before, name
            continue
        clear_4xx(response, f"upload {name}")
        assert await count(system, "intake", Upload) == uploads_before, name
        assert await count(system, "intake", Registration) == registrations_before, name
    system.extra["tried"] += tried
    record_figure("bad input", kind="excel", tried=tried)


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
    """The total of the request inputs (runs last in this module)."""
    record_total(system, __file__, at_least=90)
