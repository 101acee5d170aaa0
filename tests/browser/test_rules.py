"""Declaration's ``/rules`` in Chromium against ``khaibao up``: the two-person rule.

An officer of the city health department (demo ``syt.nghiepvu``) proposes a stricter rule
set; the page shows it waiting for a second official, and its proposer can only withdraw
it (the approval is refused with the reason); a second officer (``syt.phogiamdoc``)
approves it; the page then shows it active, with who proposed, who approved and since
when. The city DIC (``so.tttt``) reads the page without any form.

Screenshots go to test-results/browser/ (rules-*).
"""
from __future__ import annotations

import json

import pytest

from services.declaration.screening import DEFAULT_RULES

from .a11y import check_a11y
from .conftest import CHROMIUM, sign_in_at
from .test_console_pages import no_english, submit, unexpected
from .test_consoles import _no_horizontal_scroll

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) is not installed"),
]

PROPOSER, APPROVER, CITY_IT = "syt.nghiepvu", "syt.phogiamdoc", "so.tttt"


def stricter(version: str) -> str:
    doc = json.loads(DEFAULT_RULES.read_text(encoding="utf-8"))
    doc["version"] = version
    doc["rules"].insert(0, {"id": "fatigue_wave", "result": "red", "any": ["fatigue"],
                            "label": {"vi": "Mệt mỏi trong đợt dịch", "en": "Fatigue during the wave"}})
    return json.dumps(doc, ensure_ascii=False, indent=2)


def click(page, name: str) -> int:  # noqa: ANN001
    with page.expect_navigation(wait_until="load") as navigation:
        page.get_by_role("button", name=name).first.click()
    return navigation.value.status


def test_a_rule_set_is_proposed_then_approved_by_a_second_official(system, new_context, screenshots):
    url = system.urls["declaration"] + "/rules"

    # The IT department reads the rules, and cannot propose any.
    city_context = new_context()
    city = sign_in_at(city_context, url, CITY_IT)
    text = city.locator("main").inner_text()
    assert "Bộ tiêu chí đang hiệu lực" in text and "2021-06" in text
    assert city.locator("form[action='/rules']").count() == 0
    assert "do cán bộ Sở Y tế đề xuất và phê duyệt" in text

    # The first officer proposes: pending, not active; their own approval is not offered.
    context = new_context()
    page = sign_in_at(context, url, PROPOSER)
    page.fill("#f-rules", stricter("2021-07"))
    assert submit(page) == 200
    main = page.locator("main").inner_text()
    assert "Đã gửi đề xuất" in main and "Đang chờ phê duyệt" in main
    assert "Bộ tiêu chí đang hiệu lực: 2021-06" in main
    pending = page.locator("#pending-2021-07")
    assert "Sở Y tế — Phòng Nghiệp vụ Y" in pending.inner_text()
    assert pending.get_by_role("button", name="Phê duyệt và áp dụng").count() == 0
    assert pending.get_by_role("button", name="Rút đề xuất").count() == 1
    no_english(page)
    page.screenshot(path=str(screenshots / "rules-pending.png"), full_page=True)
    check_a11y(page, "rules-pending")
    assert unexpected(context.errors) == [], context.errors

    # The second officer approves: active at once, both steps on the page.
    second_context = new_context(phone=True)
    second = sign_in_at(second_context, url, APPROVER)
    assert second.locator("#pending-2021-07").get_by_role("button", name="Phê duyệt và áp dụng").count() == 1
    assert click(second, "Phê duyệt và áp dụng") == 200
    main = second.locator("main").inner_text()
    assert "Bộ tiêu chí mới đã có hiệu lực" in main and "Mệt mỏi trong đợt dịch" in main
    steps = second.locator("#active-steps").inner_text()
    assert "Phòng Nghiệp vụ Y" in steps and "Phó Giám đốc" in steps and "có hiệu lực từ" in steps
    assert "Đang chờ phê duyệt" not in main
    no_english(second)
    _no_horizontal_scroll(second)
    second.screenshot(path=str(screenshots / "rules-approved-phone.png"), full_page=True)
    check_a11y(second, "rules-approved-phone")
    assert unexpected(second_context.errors) == [], second_context.errors
