"""A commune sees only its own, a district its own and its communes', the city everything
(read only): on every page and every API endpoint of intake, checked on the server.

The routes are discovered from the app; a route missing from the tables below fails the
first test, so a page added later cannot escape these checks.
"""
from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from openpyxl import load_workbook

from libs.common.auth import Role
from services.intake.excel.template import build_template
from services.intake.imports import create_upload
from services.intake.tests.sheets import fill_template, unit_row
from tests.services.test_auth import protected_routes

from .conftest import (
    CITY,
    DEMO_COMMUNE,
    DEMO_DISTRICT,
    OTHER_COMMUNE,
    OTHER_DISTRICT,
    OTHER_DISTRICT_COMMUNE,
    FAST,
    Minter,
    build_settings,
    registration,
    run_services,
    upload,
    wait_upload,
)
from tests.services.conftest import csrf_in, make_keys

pytestmark = pytest.mark.asyncio(loop_scope="module")
HTML = {"accept": "text/html"}
UNIT_ID = "00000000-0000-4000-8000-000000000001"

PRINCIPALS = {
    "city": (Role.CITY_DIC, CITY),
    "district": (Role.DISTRICT_FOCAL, DEMO_DISTRICT),
    "health": (Role.HEALTH_OFFICER, DEMO_DISTRICT),
    "other_district": (Role.DISTRICT_FOCAL, OTHER_DISTRICT),
    "commune": (Role.COMMUNE_FOCAL, DEMO_COMMUNE),
    "other_commune": (Role.COMMUNE_FOCAL, OTHER_COMMUNE),
    "unit": (Role.UNIT_ADMIN, DEMO_COMMUNE),
    "gate": (Role.GATE_STAFF, DEMO_COMMUNE),
}
OFFICIALS = ("city", "district", "health", "other_district", "commune", "other_commune")
# What each official sees (registrations by where the unit is; lists, batches, files by office).
REGISTRATIONS = {
    "city": {"school", "agency", "market", "company", "u1", "u3"},
    "district": {"school", "agency", "market", "u1"},
    "health": {"school", "agency", "market", "u1"},
    "other_district": {"company", "u3"},
    "commune": {"school", "agency", "u1"},
    "other_commune": {"market"},
}
LISTS = {"city": {"L1", "L2", "L3"}, "district": {"L1", "L2"}, "health": {"L1", "L2"}, "other_district": {"L3"},
         "commune": {"L1"}, "other_commune": {"L2"}}
BATCHES = {"city": {"B1", "B2"}, "district": {"B1"}, "health": {"B1"}, "other_district": {"B2"}, "commune": set(),
           "other_commune": set()}
UPLOADS = {"city": {"U1", "U2", "U3"}, "district": {"U1", "U2"}, "health": {"U1", "U2"}, "other_district": {"U3"},
           "commune": {"U1"}, "other_commune": set()}
RECEIVED = {"city": 6, "district": 4, "health": 4, "other_district": 2, "commune": 2, "other_commune": 1}


@dataclass
class World:
    system: object
    minter: Minter
    ids: dict[str, str] = field(default_factory=dict)      # key -> id
    refs: dict[str, str] = field(default_factory=dict)     # key -> reference shown on pages

    def auth(self, who: str, html_page: bool = False) -> dict:
        role, path = PRINCIPALS[who]
        found = self.minter.headers(role, path, unit_id=UNIT_ID if role in (Role.UNIT_ADMIN, Role.GATE_STAFF) else None)
        return {**HTML, **found} if html_page else found

    def seen(self, text: str, keys) -> set[str]:  # noqa: ANN001
        text = html.unescape(text)
        return {k for k in keys if self.refs[k] in text}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory):
    keys = make_keys(tmp_path_factory.mktemp("intake-jurisdiction") / "data")
    async with run_services({"intake": build_settings("intake", keys, **FAST)}) as system:
        w = World(system, Minter(keys.private))
        client = system["intake"]
        for key, code, kind, name in (("school", "27664", "school", "Trường Tiểu học Cần Thạnh"),
                                      ("agency", "27664", "state_agency", "Phòng Y tế huyện Cần Giờ"),
                                      ("market", "27667", "market", "Chợ Bình Khánh"),
                                      ("company", "26740", "company", "Công ty TNHH Bến Nghé")):
            created = (await client.post("/api/registrations", json=registration(code, kind, name))).json()
            w.ids[key], w.refs[key] = created["id"], created["reference"]

        async def post(who: str, url: str, body: dict | None = None) -> dict:
            response = await client.post(url, headers=w.auth(who), json=body)
            assert response.status_code in (200, 201), (url, response.text)
            return response.json()

        await post("commune", f"/api/registrations/{w.ids['school']}/accept")
        await post("other_commune", f"/api/registrations/{w.ids['market']}/accept")
        await post("district", f"/api/registrations/{w.ids['agency']}/accept")
        commune_of_q1 = (Role.COMMUNE_FOCAL, OTHER_DISTRICT_COMMUNE)
        q1 = w.minter.headers(*commune_of_q1)
        assert (await client.post(f"/api/registrations/{w.ids['company']}/accept", headers=q1)).status_code == 200
        for key, who in (("L1", "commune"), ("L2", "other_commune")):
            sent = await post(who, "/api/lists")
            w.ids[key], w.refs[key] = sent["id"], sent["reference"]
        sent = (await client.post("/api/lists", headers=q1)).json()
        w.ids["L3"], w.refs["L3"] = sent["id"], sent["reference"]
        for key, who in (("B1", "district"), ("B2", "other_district")):
            batch = await post(who, "/api/batches", {})
            w.ids[key], w.refs[key] = batch["id"], batch["reference"]

        tree = system.runtime("intake").tree
        for key, who, row in (("U1", "commune", unit_row(1, unit_name="Cửa hàng Tạp hóa U1")),
                              ("U3", "other_district", unit_row(3, unit_name="Cửa hàng Bến Nghé U3",
                                                                commune="Phường Bến Nghé", district="Quận 1"))):
            district = tree.get("/".join(PRINCIPALS[who][1].split("/")[:2]))
            content = fill_template(build_template(district), [row])
            job = (await upload(client, w.auth(who), content)).json()
            done = await wait_upload(client, w.auth(who), job["id"])
            assert done["status"] == "imported", (done, (await client.get(f"/api/imports/{job['id']}/errors", headers=w.auth(who))).json())
            w.ids[key], w.refs[key] = job["id"], job["reference"]
        listed = (await client.get("/api/registrations?q=U1", headers=w.auth("city"))).json()
        w.ids["u1"], w.refs["u1"] = listed[0]["id"], listed[0]["reference"]
        listed = (await client.get("/api/registrations?q=U3", headers=w.auth("city"))).json()
        w.ids["u3"], w.refs["u3"] = listed[0]["id"], listed[0]["reference"]
        # A list e-mailed to the district, waiting for its review.
        runtime = system.runtime("intake")
        async with runtime.database.transaction() as session:
            mailed = await create_upload(session, scope_path=DEMO_DISTRICT, district_path=DEMO_DISTRICT,
                                         source="email", mode="review", filename="ds.xlsx", sender_email="a@b.example",
                                         content=fill_template(build_template(tree.get(DEMO_DISTRICT)), [
                                             unit_row(2, commune="Xã Bình Khánh", unit_name="Cửa hàng U2")]))
        w.ids["U2"], w.refs["U2"] = str(mailed.id), mailed.reference
        done = await wait_upload(client, w.auth("district"), w.ids["U2"])
        assert done["status"] == "awaiting_review", done
        yield w


# --- every route is in one of these tables --------------------------------------------------

LISTING = {  # route -> (what it lists, how to read it)
    "GET /api/registrations": "registrations", "GET /": "registrations", "GET /registrations.xlsx": "registrations",
    "GET /api/lists": "lists", "GET /lists": "lists", "GET /api/batches": "batches", "GET /forward": "batches",
    "GET /api/imports": "uploads", "GET /imports": "uploads", "GET /api/progress": "progress",
    "GET /progress": "progress", "GET /api/forwardable": "forwardable",
}
RECORDS = {  # route -> the kind of record in its path
    "GET /api/registrations/{registration_id}": "registrations",
    "GET /registrations/{registration_id}": "registrations",
    "GET /api/lists/{list_id}": "lists", "GET /lists/{list_id}": "lists",
    "GET /api/batches/{batch_id}": "batches", "GET /batches/{batch_id}": "batches",
    "GET /batches/{batch_id}.xlsx": "batches",
    "GET /api/imports/{upload_id}": "uploads", "GET /imports/{upload_id}": "uploads",
    "GET /api/imports/{upload_id}/errors": "uploads",
}
ACTIONS = {  # decisions, tested in test_decisions_stay_within_the_office
    "POST /api/registrations/{registration_id}/accept", "POST /api/registrations/{registration_id}/return",
    "POST /api/registrations/{registration_id}/duplicate", "POST /api/registrations/{registration_id}/exempt",
    "POST /registrations/{registration_id}/{action}", "POST /api/lists", "POST /lists", "POST /api/batches",
    "POST /forward", "POST /api/imports", "POST /imports", "POST /api/imports/{upload_id}/approve",
    "POST /api/imports/{upload_id}/dismiss", "POST /imports/{upload_id}/{decision}",
    "GET /api/imports/{upload_id}/report.xlsx", "GET /imports/{upload_id}/report.xlsx", "GET /template.xlsx",
    # suspected spam: who sees and who discards, in tests/intake/test_spam.py
    "GET /spam", "POST /spam/discard",
    # several registrations decided together: another commune's among them refuses the whole
    # choice, in tests/browser/test_small_things.py (and every role and office in the matrix)
    "POST /registrations/bulk",
}


async def test_every_protected_route_is_checked(world):
    routes = {f"{r.method} {r.path}" for r in protected_routes("intake", world.system.apps["intake"])}
    assert routes == set(LISTING) | set(RECORDS) | ACTIONS, sorted(routes ^ (set(LISTING) | set(RECORDS) | ACTIONS))


KEYS = {"registrations": REGISTRATIONS, "lists": LISTS, "batches": BATCHES, "uploads": UPLOADS}


async def _visible(world: World, who: str, route: str, kind: str) -> set[str] | int:
    method, path = route.split(" ")
    client = world.system["intake"]
    response = await client.get(path, headers=world.auth(who, html_page=not path.startswith("/api")))
    assert response.status_code == 200, (route, who, response.status_code)
    if kind == "progress":
        if path.startswith("/api"):
            rows = response.json()["rows"]
            _, jurisdiction = PRINCIPALS[who]
            assert all(r["path"] == jurisdiction or r["path"].startswith(jurisdiction + "/") for r in rows)
            return sum(r["registered"] for r in rows)
        return int(re.search(r'id="stat-registered">(\d+)<', response.text).group(1))
    if kind == "forwardable":
        return {k for k, v in world.ids.items() if v in {r["id"] for r in response.json()}}
    if path.endswith(".xlsx"):
        sheet = load_workbook(io.BytesIO(response.content)).active
        text = " ".join(str(c.value) for row in sheet.iter_rows() for c in row if c.value)
    else:
        text = response.text
    return world.seen(text, KEYS[kind][who] | set().union(*KEYS[kind].values()))


@pytest.mark.parametrize("who", OFFICIALS)
@pytest.mark.parametrize("route", sorted(LISTING))
async def test_lists_are_filtered(world, route, who):
    kind = LISTING[route]
    if kind == "forwardable" and PRINCIPALS[who][0] != Role.DISTRICT_FOCAL:
        response = await world.system["intake"].get("/api/forwardable", headers=world.auth(who))
        assert response.status_code == 403   # only a district forwards
        return
    visible = await _visible(world, who, route, kind)
    if kind == "progress":
        assert visible == RECEIVED[who]
    elif kind == "forwardable":
        assert visible == set()   # everything ready was forwarded in the fixture
    elif route == "GET /forward":
        assert visible == BATCHES[who]
    else:
        assert visible == KEYS[kind][who]


@pytest.mark.parametrize("who", OFFICIALS)
@pytest.mark.parametrize("route", sorted(RECORDS))
async def test_records_outside_the_area_do_not_exist(world, route, who):
    kind = RECORDS[route]
    method, template = route.split(" ")
    client = world.system["intake"]
    for key in set().union(*KEYS[kind].values()):
        path = re.sub(r"\{[a-z_]+\}", world.ids[key], template)
        response = await client.get(path, headers=world.auth(who, html_page=not path.startswith("/api")))
        expected = 200 if key in KEYS[kind][who] else 404
        assert response.status_code == expected, (route, who, key, response.status_code)
        if expected == 404:
            assert world.refs[key] not in response.text


@pytest.mark.parametrize("who", ["unit", "gate"])
async def test_unit_roles_see_nothing(world, who):
    client = world.system["intake"]
    for route in sorted(set(LISTING) | set(RECORDS) | ACTIONS):
        method, template = route.split(" ")
        path = re.sub(r"\{[a-z_]+\}", world.ids["school"], template).replace(world.ids["school"], world.ids["U1"]) \
            if "upload_id" in template else re.sub(r"\{[a-z_]+\}", world.ids["school"], template)
        response = await client.request(method, path, headers=world.auth(who, html_page=not path.startswith("/api")))
        assert response.status_code == 403, (route, who, response.status_code)
        assert not world.seen(response.text, set(world.refs))


async def test_decisions_stay_within_the_office(world):
    client = world.system["intake"]
    fresh = {}
    for key, code, kind in (("a", "27664", "school"), ("b", "27667", "school"), ("c", "27664", "party_agency"),
                            ("d", "26740", "school")):
        fresh[key] = (await client.post("/api/registrations", json=registration(code, kind, f"Đơn vị {key}"))).json()

    async def act(who: str, key: str, action: str = "accept", body: dict | None = None) -> int:
        response = await client.post(f"/api/registrations/{fresh[key]['id']}/{action}", headers=world.auth(who), json=body)
        return response.status_code

    # Outside the area: as if it did not exist. Inside but received by another office: refused.
    assert await act("other_commune", "a") == 404
    assert await act("other_district", "a") == 404
    assert await act("commune", "b", "return", {"reason": "Sai địa chỉ"}) == 404
    assert await act("commune", "c") == 403            # the district receives the Party agency
    assert await act("district", "a") == 403           # the commune has not sent it
    assert await act("city", "a") == 403               # the city reads, does not review
    assert await act("health", "a") == 403
    assert await act("district", "d", "exempt", {"reason": "ncovi"}) == 404
    assert await act("commune", "a") == 200 and await act("district", "c") == 200
    # Sending and forwarding only take the caller's own.
    sent = (await client.post("/api/lists", headers=world.auth("other_commune"))).status_code
    assert sent == 409                                  # Bình Khánh has nothing accepted and unsent
    other = await client.post("/api/batches", headers=world.auth("other_district"),
                              json={"registration_ids": [fresh["c"]["id"]]})
    assert other.status_code == 422
    assert (await client.post("/api/batches", headers=world.auth("city"), json={})).status_code == 403
    # Another office's e-mailed list can be neither imported nor dismissed.
    for who in ("other_district", "commune"):
        for decision, body in (("approve", None), ("dismiss", {"reason": "Không rõ người gửi"})):
            response = await client.post(f"/api/imports/{world.ids['U2']}/{decision}", headers=world.auth(who),
                                         json=body)
            assert response.status_code in (403, 404), (who, decision, response.status_code)
    # ... nor its report downloaded; the template of a district is its own.
    for who in ("other_district", "commune", "other_commune"):
        response = await client.get(f"/api/imports/{world.ids['U2']}/report.xlsx", headers=world.auth(who))
        assert response.status_code == 404
    template = await client.get("/template.xlsx", headers=world.auth("other_commune", html_page=True))
    assert template.status_code == 303 and template.headers["location"].startswith("/d/787/")
    # the city has no district of its own: no list template to hand out
    assert (await client.get("/template.xlsx", headers=world.auth("city", html_page=True))).status_code == 403
    # A file uploaded by a commune only takes that commune's units (checked row by row).
    foreign = fill_template(build_template(world.system.runtime("intake").tree.get(DEMO_DISTRICT)),
                            [unit_row(9, commune="Xã Bình Khánh")])
    job = (await upload(client, world.auth("commune"), foreign)).json()
    done = await wait_upload(client, world.auth("commune"), job["id"])
    assert done["status"] == "refused"


async def test_console_forms_need_their_token(world):
    """A form posted with the session cookie but without the page's token is refused."""
    from libs.common.auth import SESSION_COOKIE

    client = world.system["intake"]
    fresh = (await client.post("/api/registrations", json=registration("27664", "school", "Trường X"))).json()
    role, path = PRINCIPALS["commune"]
    cookie = {"cookie": f"{SESSION_COOKIE}={world.minter.token(role, path)}", **HTML}
    forged = await client.post(f"/registrations/{fresh['id']}/accept", headers=cookie, data={"csrf_token": "x" * 32})
    assert forged.status_code == 403
    page = await client.get(f"/registrations/{fresh['id']}", headers=cookie)
    token = csrf_in(page.text)
    accepted = await client.post(f"/registrations/{fresh['id']}/accept", headers=cookie, data={"csrf_token": token})
    assert accepted.status_code == 303 and accepted.headers["location"].endswith("done=accepted")

