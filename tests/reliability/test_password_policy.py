"""Issue 16, item 6: passwords people cannot guess.

Finding: "``aaaaaaaaaa`` and ``1234567890`` are accepted as passwords". A chosen password
(the console's /password, the only place a person sets one: initial and reset passwords
are random) must have at least 10 characters and is refused, with the reason in
Vietnamese then English, when it is one of the most common passwords, contains the
username or the unit's name (letters compared without diacritics or case), or is a single
repeated or sequential run.

Provisioning runs in-process with the demo accounts (real HTTP through ASGI, real SQLite,
real argon2); the unit administrator ``donvi.chocanthanh`` of "Chợ Cần Thạnh" changes its
password through the form.
"""
from __future__ import annotations

import pytest

from libs.common.demo import DEMO_PASSWORD

from tests.services.conftest import HTML, csrf_token, signed_in

from .conftest import run_services

UNIT_ADMIN = "donvi.chocanthanh"

# (password, what the Vietnamese message must say)
REFUSED = [
    ("aaaaaaaaaa", "lặp lại hoặc liên tiếp"),
    ("1234567890", "lặp lại hoặc liên tiếp"),
    ("abcdefghij", "lặp lại hoặc liên tiếp"),
    ("9876543210", "lặp lại hoặc liên tiếp"),
    ("ZZZZZZZZZZZZ", "lặp lại hoặc liên tiếp"),
    ("qwertyuiop", "phổ biến"),
    ("Password123", "phổ biến"),
    ("1qaz2wsx3edc", "phổ biến"),
    ("donvi.chocanthanh!", "tên đăng nhập"),
    ("Ban-Quan-Ly-2024", "tên đơn vị"),
    ("cần thạnh quê tôi 24", "tên đơn vị"),
    ("CANTHANH#2024-abc", "tên đơn vị"),
    ("ngan-9", "ít nhất 10 ký tự"),
]
ACCEPTED = "Hoa-sen-nở-giữa-đầm-47"


@pytest.fixture
async def provisioning(make_settings):
    async with run_services({"provisioning": make_settings("provisioning", demo=True)}) as running:
        yield running["provisioning"]


async def _change(client, cookies: dict, current: str, new: str):  # noqa: ANN202
    token = await csrf_token(client, cookies, "/password")
    response = await client.post("/password", headers=HTML, cookies=cookies, data={
        "current": current, "new": new, "confirm": new, "csrf_token": token})
    client.cookies.clear()
    return response


async def test_guessable_passwords_are_refused_with_the_reason(provisioning):
    cookies = await signed_in(provisioning, UNIT_ADMIN, DEMO_PASSWORD)
    for password, reason in REFUSED:
        response = await _change(provisioning, cookies, DEMO_PASSWORD, password)
        assert response.status_code == 422, (password, response.status_code)
        assert reason in response.text, (password, reason)
        assert f'value="{password}"' not in response.text  # the refused password is never echoed
    # Nothing changed: the old password still signs in.
    await signed_in(provisioning, UNIT_ADMIN, DEMO_PASSWORD)
    # A long passphrase of the person's own passes, and then signs in.
    done = await _change(provisioning, cookies, DEMO_PASSWORD, ACCEPTED)
    assert done.status_code == 303, done.text
    await signed_in(provisioning, UNIT_ADMIN, ACCEPTED)


async def test_the_reason_is_in_the_readers_language(provisioning):
    """Issue 18, item 2: in Vietnamese the page says it in Vietnamese only; an English reader
    (the console's language choice) reads it in English."""
    cookies = await signed_in(provisioning, UNIT_ADMIN, DEMO_PASSWORD)
    response = await _change(provisioning, cookies, DEMO_PASSWORD, "1234567890")
    assert response.status_code == 422
    assert "repeated or sequential" not in response.text
    english = await _change(provisioning, {**cookies, "khaibao_lang": "en"}, DEMO_PASSWORD, "1234567890")
    assert english.status_code == 422
    assert "repeated or sequential" in english.text


@pytest.mark.parametrize(("password", "code"), [
    ("aaaaaaaaaa", "run"), ("1234567890", "run"), ("abcdefghij", "run"), ("9876543210", "run"),
    ("0987654321", "run"), ("abcabcabcabc", "run"), ("QWERTYUIOP", "common"), ("ttyt.cangio2024", "username"),
    ("my-CanGio-2024!", "username"), ("Chợ-Cần-Thạnh-1", "unit_name"), ("short", "too_short"),
    ("Hoa-sen-nở-giữa-đầm-47", None), ("ca-phe-sua-da-2021", None), ("1357924680xyz", None),
])
def test_policy_reasons(password, code):
    from services.provisioning.password_policy import refusal

    assert refusal(password, username="ttyt.cangio", names=("Chợ Cần Thạnh",)) == code
