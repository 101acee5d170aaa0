"""The gate keeps working without network (issue 18, item 9), in Chromium at phone size.

Opened once online, the gate console is cut from the network (Playwright's offline mode) for
five minutes of wall-clock time, as a gate phone in a basement would be. Meanwhile it is
reloaded (twice), counts 50 entries (25 personal QR codes verified in the page, 25 without a
code) and takes 5 assisted declarations, spread over the window; the page shows what waits.
Then the network comes back: the server holds each of the 50 entries and 5 declarations
exactly once, and the page shows 0 waiting and each visitor's result.
"""
from __future__ import annotations

import os
import sqlite3
import time
import uuid

import httpx
import pytest

from libs.common.demo import DEMO_PASSWORD
from tests.services.conftest import demo_token

from .a11y import check_a11y
from .conftest import CHROMIUM
from .declaration_support import demo_venues, fill_person
from .test_declaration_gate import scan, signed_in_gate

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) is not installed"),
]
OFFLINE_SECONDS = float(os.environ.get("KHAIBAO_TEST_GATE_OFFLINE_SECONDS", "300"))
VISITORS = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Hoàng Cường", "Phạm Thu Dung", "Võ Minh Em"]
DECLARE_AT = {5, 16, 27, 38, 49}  # which of the 55 steps are assisted declarations
RELOAD_AT = {0, 30}


def passes(system, venue: dict, n: int) -> list[str]:  # noqa: ANN001
    """``n`` green personal QR codes of visitors who declared online before the cut."""
    codes = []
    for i in range(n):
        body = {"venue_code": venue["code"], "consent": True, "idempotency_key": uuid.uuid4().hex, "people": [{
            "full_name": "Đỗ Văn Khách", "id_number": f"0790800{i:05d}", "birth": "1980", "gender": "male",
            "phone": "0903000111", "province_code": "79", "district_code": "787", "commune_code": "27664",
            "street": "3 Rừng Sác"}]}
        response = httpx.post(f"{system.urls['declaration']}/api/declarations", json=body, timeout=20)
        assert response.status_code == 201, response.text
        codes.append(response.json()["declarations"][0]["qr"])
    return codes


def stored(system, venue_id: str) -> dict:  # noqa: ANN001
    """What the declaration service's database holds for the venue (entries, gate declarations)."""
    with sqlite3.connect(system.data_dir / "declaration.db") as db:
        venue_hex = uuid.UUID(venue_id).hex
        entries = [uuid.UUID(str(row[0])) for row in db.execute(
            "SELECT id FROM gate_entries WHERE replace(venue_id, '-', '') = ?", (venue_hex,))]
        keys = [row[0] for row in db.execute("SELECT key FROM submissions")]
        gate = db.execute("SELECT count(*) FROM declarations WHERE channel = 'gate' AND replace(venue_id, '-', '') = ?",
                          (venue_hex,)).fetchone()[0]
    return {"entries": entries, "keys": keys, "gate_declarations": gate}


def waiting(page) -> tuple[int, int]:  # noqa: ANN001
    note = page.locator("#offline-note")
    return int(note.get_attribute("data-entries") or 0), int(note.get_attribute("data-declarations") or 0)


@pytest.mark.timeout(OFFLINE_SECONDS + 300)
def test_the_gate_works_offline_for_five_minutes(system, new_context, screenshots):
    venue = demo_venues(system)[0]
    codes = passes(system, venue, 25)
    context, page = signed_in_gate(system, new_context, venue, phone=True)
    base = f"{system.urls['declaration']}/gate/{venue['id']}"
    # Online once: the service worker keeps this gate's shell, the form, the assets and the keys.
    page.wait_for_function("() => document.documentElement.getAttribute('data-offline-ready') === '1'", timeout=30000)
    page.reload(wait_until="load")  # now controlled by the service worker
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    manifest = httpx.get(f"{system.urls['declaration']}/gate/manifest.webmanifest", timeout=10).json()
    assert manifest["scope"] == "/gate" and manifest["display"] == "standalone"
    before = stored(system, venue["id"])
    entries_before = int(page.locator("#count-entries").inner_text())

    context.set_offline(True)
    started = time.monotonic()
    spacing = OFFLINE_SECONDS / 56
    scanned = manual = declared = 0
    for step in range(55):
        if step in RELOAD_AT:
            page.reload(wait_until="load")
            assert page.locator("#gate").get_attribute("data-shell") == "1"  # the kept shell: no personal data
            assert page.locator("h1").inner_text() == venue["name"]
        if step in DECLARE_AT:
            name = VISITORS[declared]
            page.get_by_role("link", name="Khai báo hộ khách").click()
            page.wait_for_load_state("load")
            assert page.locator("h1").inner_text() == "Khai báo hộ khách"
            fill_person(page, 0, name=name, birth="12/03/1990", gender=1, id_number=f"07919000{declared:04d}",
                        phone="0912 345 678")
            page.check("#f-consent")
            if declared == 0:
                page.screenshot(path=str(screenshots / "gate-offline-assisted-form-phone.png"), full_page=True)
            page.click("#send")
            page.wait_for_url(f"{base}*")
            page.locator("#queued-note").wait_for()
            declared += 1
            page.wait_for_function(f"() => document.querySelector('#offline-note').dataset.declarations === '{declared}'")
        elif scanned <= manual:
            scan(page, codes[scanned])
            page.locator("#signal-box .signal[data-outcome='valid']").wait_for()
            assert page.locator("#signal-box .signal").get_attribute("data-checked") == "browser"
            scanned += 1
        else:
            page.locator("#entry-form button").click()
            manual += 1
        page.wait_for_function(
            f"() => document.querySelector('#offline-note').dataset.entries === '{scanned + manual}'")
        assert waiting(page) == (scanned + manual, declared)
        pause = started + (step + 1) * spacing - time.monotonic()
        if pause > 0:
            page.wait_for_timeout(pause * 1000)
    assert (scanned, manual, declared) == (25, 25, 5)
    page.wait_for_timeout(max(0.0, started + OFFLINE_SECONDS - time.monotonic()) * 1000)
    assert time.monotonic() - started >= OFFLINE_SECONDS
    assert int(page.locator("#count-waiting").inner_text()) == 55
    assert int(page.locator("#count-entries").inner_text()) >= entries_before + 50
    page.screenshot(path=str(screenshots / "gate-offline-waiting-phone.png"), full_page=True)
    check_a11y(page, "gate-offline-waiting")
    queued = page.evaluate("""() => Promise.all([KhaibaoGateQueue.all('entries'), KhaibaoGateQueue.all('declarations')])
        .then(([e, d]) => ({entries: e.map(x => x.nonce), keys: d.map(x => x.key), names: d.map(x => x.names[0])}))""")
    assert len(set(queued["entries"])) == 50 and len(set(queued["keys"])) == 5
    assert sorted(queued["names"]) == sorted(VISITORS)
    # Nothing reached the server while offline.
    assert stored(system, venue["id"]) == before

    context.set_offline(False)
    page.wait_for_function("() => document.querySelector('#count-waiting').textContent === '0'", timeout=60000)
    assert waiting(page) == (0, 0) and page.locator("#offline-note").is_hidden()
    results = page.locator("#sent li")
    assert results.count() == 5
    texts = results.all_inner_texts()
    for name in VISITORS:
        [line] = [t for t in texts if t.startswith(name + " · ")]
        assert " · XANH · " in line  # the visitor's result
    page.screenshot(path=str(screenshots / "gate-offline-synced-phone.png"), full_page=True)
    check_a11y(page, "gate-offline-synced")
    after = stored(system, venue["id"])
    new_entries = set(after["entries"]) - set(before["entries"])
    assert {uuid.UUID(n) for n in queued["entries"]} <= new_entries  # each of the 50, stored once (the id is the nonce)
    assert len(after["entries"]) == len(before["entries"]) + 55  # + one entry per admitted assisted declaration
    assert sorted(set(after["keys"]) - set(before["keys"])) == sorted(queued["keys"])
    assert after["gate_declarations"] == before["gate_declarations"] + 5
    # The device forgets what was sent; a reload shows the server's count and nothing waiting.
    assert page.evaluate("() => KhaibaoGateQueue.all('declarations').then(d => d.length)") == 0
    page.reload(wait_until="load")
    assert int(page.locator("#count-entries").inner_text()) == entries_before + 55
    token = demo_token(system, "cong.chocanthanh")
    counts = httpx.get(f"{system.urls['declaration']}/api/gate/{venue['id']}/counts",
                       headers={"authorization": f"Bearer {token}"}, timeout=10).json()
    assert counts["entries"] == entries_before + 55
    assert [e for e in context.errors if "ERR_INTERNET_DISCONNECTED" not in e] == [], context.errors


def test_a_session_ended_while_offline_loses_nothing(system, new_context, screenshots):
    """Desktop (a PC with a USB scanner): the session ends while the gate is offline; back
    online the page asks to sign in again, and then sends what waited, each once."""
    venue = demo_venues(system)[1]
    context, page = signed_in_gate(system, new_context, venue, phone=False)
    base = f"{system.urls['declaration']}/gate/{venue['id']}"
    page.wait_for_function("() => document.documentElement.getAttribute('data-offline-ready') === '1'", timeout=30000)
    page.reload(wait_until="load")
    before = stored(system, venue["id"])
    context.set_offline(True)
    page.reload(wait_until="load")
    for _ in range(2):
        page.locator("#entry-form button").click()
    page.get_by_role("link", name="Khai báo hộ khách").click()
    page.wait_for_load_state("load")
    fill_person(page, 0, name="Hồ Thị Giang", birth="01/01/1970", gender=2, id_number="079170009999",
                phone="0912 000 111")
    page.check("#f-consent")
    page.click("#send")
    page.locator("#queued-note").wait_for()
    page.wait_for_function("() => document.querySelector('#offline-note').dataset.entries === '2'")
    assert waiting(page) == (2, 1)
    page.screenshot(path=str(screenshots / "gate-offline-waiting-desktop.png"), full_page=True)
    context.clear_cookies()  # the session ended meanwhile
    context.set_offline(False)
    note = page.locator("#offline-note[data-signed-out='1']")
    note.wait_for(timeout=30000)
    assert "Phiên đăng nhập đã hết" in note.inner_text()
    assert waiting(page) == (2, 1) and stored(system, venue["id"]) == before  # nothing sent, nothing lost
    page.screenshot(path=str(screenshots / "gate-offline-signed-out-desktop.png"), full_page=True)
    note.get_by_role("link", name="Đăng nhập lại").click()
    page.wait_for_url("**/signin**")
    page.fill("#f-username", "cong.chocanthanh")
    page.fill("#f-password", DEMO_PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_load_state("load")
    if not page.url.startswith(base):
        page.goto(base, wait_until="load")
    page.wait_for_function("() => document.querySelector('#count-waiting').textContent === '0'", timeout=30000)
    assert page.locator("#sent li").all_inner_texts()[0].startswith("Hồ Thị Giang · XANH · ")
    page.screenshot(path=str(screenshots / "gate-offline-synced-desktop.png"), full_page=True)
    after = stored(system, venue["id"])
    assert len(after["entries"]) == len(before["entries"]) + 3
    assert after["gate_declarations"] == before["gate_declarations"] + 1
