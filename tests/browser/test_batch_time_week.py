"""Issue 18.5: one batch shows the same time in intake and in provisioning. The demo week's
batch was forwarded days before ``up`` published it: provisioning showed the publication
time (the event's), a day or more off. Chromium on ``khaibao up`` with its demo week.
"""
from __future__ import annotations

import pytest


from .conftest import CHROMIUM, sign_in_at

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) is not installed"),
]
DEMO_WEEK = True


def _signed_in(context, system, service: str, username: str, path: str):  # noqa: ANN001, ANN202
    return sign_in_at(context, system.urls[service] + path, username)


def test_a_batch_has_the_same_forwarding_time_in_intake_and_provisioning(system, new_context, screenshots):
    district = _signed_in(new_context(), system, "intake", "vhtt.cangio", "/forward")
    rows = district.locator("section[aria-labelledby=batches-title] tbody tr")
    assert rows.count() >= 1
    intake_times = {rows.nth(i).locator("td").nth(0).inner_text().strip(): rows.nth(i).locator("td").nth(3).inner_text()
                    .strip() for i in range(rows.count())}
    district.screenshot(path=str(screenshots / "small-batch-intake.png"), full_page=True)
    city = _signed_in(new_context(), system, "provisioning", "so.tttt", "/batches")
    city.screenshot(path=str(screenshots / "small-batch-provisioning.png"), full_page=True)
    for reference, forwarded in intake_times.items():
        row = city.locator(f"tr[data-batch='{reference}']")
        assert row.count() == 1, reference
        shown = row.locator("td").nth(2).inner_text().strip()
        assert shown == forwarded, (reference, forwarded, shown)
