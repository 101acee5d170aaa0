"""Venues: added, renamed, closed, reopened, given a new code; every change is an event with
the venue's full state, so the declaration service keeps its copy; an old code is retired
for ever; posters are printed for open venues only."""
from __future__ import annotations

from libs.common.auth import Role
from libs.common.events.provisioning import VENUE_CODE_ALPHABET, normalise_venue_code

from .conftest import Accounts, eventually
from .support import batch, events_on_bus, unit


async def _issued_unit(accounts: Accounts) -> dict:
    batch_id = await accounts.batch_arrives(batch([unit("Bệnh viện huyện Cần Giờ", gates=1)]))
    await accounts.issue(batch_id)
    city = accounts.headers(Role.CITY_DIC)
    [row] = (await accounts.provisioning.get("/api/units", headers=city)).json()
    return (await accounts.provisioning.get(f"/api/units/{row['id']}", headers=city)).json()


async def test_venue_changes_are_events_with_the_full_state(accounts: Accounts):
    hospital = await _issued_unit(accounts)
    admin = accounts.html(Role.UNIT_ADMIN, hospital["commune_path"], unit_id=hospital["id"])
    [gate] = hospital["venues"]

    added = await accounts.provisioning.post(f"/units/{hospital['id']}/venues", headers=admin,
                                             data={"name": "Cổng cấp cứu", "address": ""})
    assert added.status_code == 303 and "done=venue_added" in added.headers["location"]
    short = await accounts.provisioning.post(f"/units/{hospital['id']}/venues", headers=admin, data={"name": "X"})
    assert "error=venue_name" in short.headers["location"]
    page = await accounts.provisioning.get(short.headers["location"], headers=admin)
    assert "Tên địa điểm cần từ 2 đến 200 ký tự." in page.text
    # The text policy (libs/common/text.py): each refusal names its field.
    for data, code, message in [
            ({"name": "Cổng\u0000chính"}, "venue_name_text", "Tên địa điểm có ký tự điều khiển"),
            ({"name": "Cổng \u202echính"}, "venue_name_text", "Tên địa điểm có ký tự điều khiển, ký tự ẩn"),
            ({"name": "Cổng phụ", "address": "12 Đường\ue000 Số 3"}, "venue_address_text", "Địa chỉ địa điểm có")]:
        refused = await accounts.provisioning.post(f"/units/{hospital['id']}/venues", headers=admin, data=data)
        assert f"error={code}" in refused.headers["location"], (data, refused.headers["location"])
        assert message in (await accounts.provisioning.get(refused.headers["location"], headers=admin)).text

    renamed = await accounts.provisioning.post(f"/venues/{gate['id']}/rename", headers=admin,
                                               data={"name": "Cổng chính – khu khám bệnh", "address": ""})
    assert "done=venue_renamed" in renamed.headers["location"]
    unconfirmed = await accounts.provisioning.post(f"/venues/{gate['id']}/rotate", headers=admin, data={})
    assert "error=confirm_needed" in unconfirmed.headers["location"]
    rotated = await accounts.provisioning.post(f"/venues/{gate['id']}/rotate", headers=admin, data={"confirm": "yes"})
    assert "done=code_rotated" in rotated.headers["location"]
    closed = await accounts.provisioning.post(f"/venues/{gate['id']}/disable", headers=admin,
                                              data={"confirm": "yes", "reason": "Sửa chữa cổng"})
    assert "done=venue_disabled" in closed.headers["location"]
    poster = await accounts.provisioning.get(f"/venues/{gate['id']}/poster.pdf", headers=admin)
    assert poster.status_code == 303 and "error=venue_inactive" in poster.headers["location"]
    reopened = await accounts.provisioning.post(f"/venues/{gate['id']}/enable", headers=admin, data={})
    assert "done=venue_enabled" in reopened.headers["location"]

    city = accounts.headers(Role.CITY_DIC)
    after = (await accounts.provisioning.get(f"/api/units/{hospital['id']}", headers=city)).json()
    current = next(v for v in after["venues"] if v["id"] == gate["id"])
    assert current["code"] != gate["code"] and current["active"] is True
    assert current["name"] == "Cổng chính – khu khám bệnh"

    async def published():
        events = await events_on_bus(accounts.system.settings["provisioning"].bus_url, "khaibao.provisioning",
                                     wait=0.5)
        mine = [e for e in events if e.type.startswith("provisioning.venue.")
                and e.data.unit_id and str(e.data.unit_id) == hospital["id"]]
        return mine if len(mine) >= 6 else None

    events = await eventually(published, what="the venue events on the bus")
    types = [e.type for e in events]
    assert types == ["provisioning.venue.created", "provisioning.venue.created", "provisioning.venue.updated",
                     "provisioning.venue.code_rotated", "provisioning.venue.disabled", "provisioning.venue.enabled"]
    rotation = events[3].data
    assert (rotation.old_code, rotation.code) == (gate["code"], current["code"])
    assert rotation.name == "Cổng chính – khu khám bệnh" and rotation.unit_name == "Bệnh viện huyện Cần Giờ"
    assert events[4].data.reason == "Sửa chữa cổng" and events[4].data.active is False
    assert events[5].data.active is True
    assert all(e.partition_key() == gate["id"] for e in events[2:])

    # The history of the unit says who did what.
    history = await accounts.provisioning.get(f"/units/{hospital['id']}", headers=accounts.html(Role.CITY_DIC))
    for action in ("Thêm địa điểm", "Sửa địa điểm", "Đổi mã địa điểm", "Ngừng hoạt động địa điểm",
                   "Mở lại địa điểm", "Cấp tài khoản"):
        assert action in history.text, action


async def test_a_retired_code_is_never_given_again(accounts: Accounts):
    hospital = await _issued_unit(accounts)
    admin = accounts.html(Role.UNIT_ADMIN, hospital["commune_path"], unit_id=hospital["id"])
    [gate] = hospital["venues"]
    seen = {gate["code"]}
    for _ in range(5):
        await accounts.provisioning.post(f"/venues/{gate['id']}/rotate", headers=admin, data={"confirm": "yes"})
        detail = (await accounts.provisioning.get(f"/api/units/{hospital['id']}",
                                                  headers=accounts.headers(Role.CITY_DIC))).json()
        code = detail["venues"][0]["code"]
        assert code not in seen
        seen.add(code)
    from services.provisioning.models import RetiredCode
    from sqlalchemy import select

    async with accounts.system.runtime("provisioning").database.transaction(readonly=True) as session:
        retired = set((await session.execute(select(RetiredCode.code))).scalars())
    assert retired == seen - {code}
    assert all(set(c) <= set(VENUE_CODE_ALPHABET) and len(c) == 10 for c in seen)
    assert normalise_venue_code("abcde-fghjk") == "ABCDEFGHJK"


async def test_the_unit_zip_has_the_open_venues_only(accounts: Accounts):
    import io
    import zipfile

    batch_id = await accounts.batch_arrives(batch([unit("Siêu thị Cần Giờ", gates=3)]))
    await accounts.issue(batch_id)
    city = accounts.headers(Role.CITY_DIC)
    [row] = (await accounts.provisioning.get("/api/units", headers=city)).json()
    detail = (await accounts.provisioning.get(f"/api/units/{row['id']}", headers=city)).json()
    admin = accounts.html(Role.UNIT_ADMIN, detail["commune_path"], unit_id=detail["id"])
    await accounts.provisioning.post(f"/venues/{detail['venues'][1]['id']}/disable", headers=admin,
                                     data={"confirm": "yes"})
    response = await accounts.provisioning.get(f"/units/{detail['id']}/posters.zip", headers=admin)
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert "filename*=UTF-8''ma-qr-Si%C3%AAu%20th%E1%BB%8B" in response.headers["content-disposition"]
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert sorted(names) == sorted(f"cong-{i}-{detail['venues'][i - 1]['code']}.pdf" for i in (1, 3))
