"""Account actions around sign-in: guessing never locks the owner out and a reset still works,
a disabled account cannot
sign in, gate staff created by their unit administrator must choose their own password."""
from __future__ import annotations

import re

import httpx

from libs.common.auth import Role

from .conftest import HTML, Accounts, wait_for_mail
from .support import DEMO_DISTRICT, batch, credentials_in, unit


async def _issued(accounts: Accounts, name: str, email: str) -> tuple[dict, str, str]:
    batch_id = await accounts.batch_arrives(batch([unit(name, email=email)]))
    await accounts.issue(batch_id)
    mails = await wait_for_mail(accounts.mail, 1)
    username, password = credentials_in(next(m for m in mails if email in str(m["To"])))
    city = accounts.headers(Role.CITY_DIC)
    row = next(u for u in (await accounts.provisioning.get("/api/units", headers=city)).json() if u["name"] == name)
    return (await accounts.provisioning.get(f"/api/units/{row['id']}", headers=city)).json(), username, password


async def _token(accounts: Accounts, username: str, password: str):  # noqa: ANN202
    return await accounts.provisioning.post("/api/token", json={"username": username, "password": password})


async def test_guessing_never_locks_the_owner_out_and_a_disabled_one_cannot_sign_in(accounts: Accounts):
    detail, username, password = await _issued(accounts, "Nhà thuốc Long Châu Cần Thạnh", "longchau@example.vn")
    transport = httpx.ASGITransport(app=accounts.system.apps["provisioning"], client=("127.0.0.66", 40000))
    async with httpx.AsyncClient(transport=transport, base_url=str(accounts.provisioning.base_url)) as guesser:
        for attempt in range(5):
            wrong = await guesser.post("/api/token", json={"username": username, "password": f"sai-{attempt}"})
            assert wrong.status_code == 401
        # The guesser's address is throttled: the right password gets the generic answer, never "locked".
        throttled = await guesser.post("/api/token", json={"username": username, "password": password})
        assert throttled.status_code == 401 and "không đúng" in throttled.json()["detail"]
    # The owner, from another address, is not refused.
    assert (await _token(accounts, username, password)).status_code == 200
    account_id = detail["accounts"][0]["id"]
    state = (await accounts.provisioning.get(f"/api/units/{detail['id']}", headers=accounts.headers(Role.CITY_DIC))
             ).json()["accounts"][0]
    assert "locked" not in state
    # The district resets it from the unit's page (a confirmation box first).
    district = accounts.html(Role.DISTRICT_FOCAL, DEMO_DISTRICT)
    unconfirmed = await accounts.provisioning.post(f"/accounts/{account_id}/reset", headers=district, data={})
    assert "error=confirm_needed" in unconfirmed.headers["location"]
    reset = await accounts.provisioning.post(f"/accounts/{account_id}/reset", headers=district,
                                             data={"confirm": "yes"})
    assert reset.status_code == 303 and "done=reset_done" in reset.headers["location"]
    page = await accounts.provisioning.get(reset.headers["location"], headers=district)
    assert "Đã đặt lại mật khẩu. Mật khẩu mới đang được gửi cho đơn vị" in page.text
    mails = await wait_for_mail(accounts.mail, 2)
    _, new = credentials_in(mails[1])
    assert (await _token(accounts, username, new)).status_code == 200

    # Disabled: the right password no longer signs in, and says why; enabled again: it does.
    city = accounts.headers(Role.CITY_DIC)
    assert (await accounts.provisioning.post(f"/api/accounts/{account_id}/disable", headers=city)).status_code == 200
    refused = await _token(accounts, username, new)
    assert refused.status_code == 401 and "vô hiệu hóa" in refused.json()["detail"]
    assert (await accounts.provisioning.post(f"/api/accounts/{account_id}/enable", headers=city)).status_code == 200
    assert (await _token(accounts, username, new)).status_code == 200


async def test_gate_staff_get_a_one_time_password_and_choose_their_own(accounts: Accounts):
    detail, _, _ = await _issued(accounts, "Trường THCS Cần Thạnh", "thcs.canthanh@example.vn")
    admin = accounts.html(Role.UNIT_ADMIN, detail["commune_path"], unit_id=detail["id"])
    empty = await accounts.provisioning.post(f"/units/{detail['id']}/staff", headers=admin, data={"name": " "})
    assert "error=staff_name" in empty.headers["location"]
    for hostile in ("𝕳𝖊𝖑𝖑𝖔", "Lê\u0000Văn", "Lê \u202eVăn", "Robert'); DROP TABLE accounts;--"):
        refused = await accounts.provisioning.post(f"/units/{detail['id']}/staff", headers=admin,
                                                   data={"name": hostile})
        assert "error=staff_name_text" in refused.headers["location"], hostile
    shown = await accounts.provisioning.get(refused.headers["location"], headers=admin)
    assert "Tên nhân viên chỉ gồm chữ cái, khoảng trắng" in shown.text
    page = await accounts.provisioning.post(f"/units/{detail['id']}/staff", headers=admin,
                                            data={"name": "Lê Văn Cổng"})
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "Mật khẩu chỉ hiện lần này" in page.text
    username = re.search(r'id="one-time-username">([^<]+)<', page.text).group(1)
    password = re.search(r'id="one-time-password">([^<]+)<', page.text).group(1)
    assert username == detail["accounts"][0]["username"] + ".cong1"
    token = await _token(accounts, username, password)
    assert token.status_code == 200 and token.json()["must_change_password"] is True
    me = await accounts.provisioning.get("/api/me", headers={"authorization": f"Bearer {token.json()['access_token']}"})
    assert me.status_code == 403  # nothing but the password page until it is changed
    signin = await accounts.provisioning.post("/signin", data={"username": username, "password": password},
                                              headers=HTML)
    assert signin.headers["location"] == "/password"
    # The unit's page now lists the staff account, and the unit administrator can disable it.
    unit_page = await accounts.provisioning.get(f"/units/{detail['id']}", headers=admin)
    assert username in unit_page.text and "Lê Văn Cổng" in unit_page.text
    staff_id = next(a["id"] for a in (await accounts.provisioning.get(
        f"/api/units/{detail['id']}", headers=accounts.headers(Role.CITY_DIC))).json()["accounts"]
        if a["username"] == username)
    off = await accounts.provisioning.post(f"/accounts/{staff_id}/disable", headers=admin, data={"confirm": "yes"})
    assert "done=disabled_done" in off.headers["location"]
    assert (await _token(accounts, username, password)).status_code == 401
