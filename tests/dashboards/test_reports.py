"""The district's deployment report (circular 2.3): asked for on the page (CSRF), made by
the worker, .xlsx and PDF per commune with the numbers of the events, published for the
Support Channel, downloadable by the district and the city only; the schedule makes one
report per district and period, even with two replicas."""
from __future__ import annotations

import asyncio
import io
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pypdfium2 as pdfium
from openpyxl import load_workbook
from sqlalchemy import func, select

from libs.common.adminunits import load_tree
from libs.common.auth import SESSION_COOKIE, Role
from libs.common.db import Database
from libs.common.events import parse_event
from services.reporting.reports import Schedule, enqueue_due, reports
from services.reporting.service import today

from .conftest import eventually, feed, processed, reporting_on
from .world import BEN_NGHE, BINH_KHANH, CAN_GIO, CAN_THANH, build_world

HTML = {"accept": "text/html"}


async def _published(running) -> list:  # noqa: ANN001
    consumer = running.runtime("reporting").bus.consumer("test-report-reader", ["khaibao.reporting"])
    await consumer.start()
    try:
        found = []
        for _ in range(20):
            found += [parse_event(m.value) for m in await consumer.poll(max_records=50, timeout=0.5)]
            if found:
                return found
        return found
    finally:
        await consumer.stop()


async def test_report_on_demand(backend, keys, mint):
    day = today()
    world = build_world(day, declarations=80)
    async with reporting_on(backend, keys, report_poll_interval=0.2) as running:
        await feed(running, world.events)
        await eventually(lambda: processed(running, world.events), timeout=60, what="events projected")
        client = running["reporting"]
        token = mint.token(Role.DISTRICT_FOCAL, CAN_GIO)
        client.cookies.set(SESSION_COOKIE, token)
        page = await client.get("/reports", headers=HTML)
        assert page.status_code == 200
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        refused = await client.post("/reports", data={"start": day.isoformat(), "end": day.isoformat()},
                                    headers=HTML)
        assert refused.status_code in (400, 403)  # 403 once the common CSRF check refuses it first
        bad = await client.post("/reports", data={"start": "ngày mai", "end": day.isoformat(), "csrf_token": csrf},
                                headers=HTML)
        assert bad.status_code == 400 and "năm-tháng-ngày" in bad.text
        asked = await client.post("/reports", data={"start": day.isoformat(), "end": day.isoformat(),
                                                     "csrf_token": csrf}, headers=HTML)
        assert asked.status_code == 303
        client.cookies.clear()

        async def done() -> list:
            items = (await client.get("/api/reports", headers=mint.headers(Role.DISTRICT_FOCAL, CAN_GIO))).json()
            return [i for i in items if i["status"] == "done"]
        report = (await eventually(done, timeout=30, what="the report made"))[0]
        assert report["summary"]["declarations"] == world.declarations[CAN_THANH] + world.declarations[BINH_KHANH]

        district = mint.headers(Role.DISTRICT_FOCAL, CAN_GIO)
        xlsx = await client.get(report["xlsx_path"], headers=district)
        assert xlsx.status_code == 200 and xlsx.headers["content-disposition"].startswith("attachment")
        sheet = load_workbook(io.BytesIO(xlsx.content)).active
        rows = {r[0]: r for r in sheet.iter_rows(values_only=True) if r and r[0]}
        header = next(r for r in sheet.iter_rows(values_only=True) if r and r[0] == "Phường/xã/thị trấn")
        can_thanh = dict(zip(header, rows["Thị trấn Cần Thạnh"], strict=True))
        assert can_thanh["Lượt khai báo"] == world.declarations[CAN_THANH]
        assert can_thanh["Tờ khai nghi nhiễm"] == world.flagged[CAN_THANH]
        assert can_thanh["Đơn vị đăng ký"] == world.funnel[CAN_THANH]["submitted"]
        assert can_thanh["Đã cấp tài khoản"] == world.funnel[CAN_THANH]["issued"]
        assert can_thanh["Đã hoạt động"] == world.funnel[CAN_THANH]["live"]
        assert "Phường Bến Nghé" not in rows

        pdf = await client.get(report["pdf_path"], headers=mint.headers(Role.CITY_DIC, "79"))
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        text = pdfium.PdfDocument(pdf.content)[0].get_textpage().get_text_range()
        assert "Báo cáo kết quả triển khai khai báo y tế điện tử" in text
        assert "Huyện Cần Giờ" in text and "Thị trấn Cần Thạnh" in text and "Xã Bình Khánh" in text

        for other in (mint.headers(Role.DISTRICT_FOCAL, "79/760"), mint.headers(Role.COMMUNE_FOCAL, CAN_THANH)):
            assert (await client.get(report["pdf_path"], headers=other)).status_code == 403
        assert (await client.get("/reports/not-a-report.pdf", headers=district)).status_code == 404

        events = await eventually(lambda: _published(running), timeout=20, what="report published")
        event = next(e for e in events if str(e.data.report_id) == report["report_id"])
        assert event.type == "reporting.report.published" and event.data.district_path == CAN_GIO
        assert event.data.xlsx_path == report["xlsx_path"] and event.data.trigger == "on_demand"
        assert event.data.by_name.startswith("Người kiểm thử")
        assert BEN_NGHE


async def test_only_a_district_asks_for_a_report(tmp_path, keys, mint):
    from tests.conftest import Backend

    backend = Backend("embedded", tmp_path, f"embedded://{tmp_path / 'bus.db'}", "t.")
    async with reporting_on(backend, keys) as running:
        client = running["reporting"]
        for role, where in ((Role.COMMUNE_FOCAL, CAN_THANH), (Role.CITY_DIC, "79")):
            response = await client.post("/reports", data={"start": "2021-06-01", "end": "2021-06-07"},
                                         headers=mint.headers(role, where))
            assert response.status_code == 403
        listing = await client.get("/reports", headers={**HTML, **mint.headers(Role.CITY_DIC, "79")})
        assert listing.status_code == 200 and 'action="/reports"' not in listing.text


async def test_schedule_makes_one_report_per_district_and_period(backend):
    url = await backend.database_url("reporting")
    first, second = Database(url), Database(url)
    from pathlib import Path

    from libs.common import migrate
    import services.reporting as package

    await migrate.upgrade(first, Path(package.__file__).parent / "migrations", "reporting")
    tree = load_tree(None, "79")
    replicas = [SimpleNamespace(database=first, tree=tree), SimpleNamespace(database=second, tree=tree)]
    schedule = Schedule.parse("daily@17:00")
    before = datetime(2021, 6, 20, 9, 0, tzinfo=UTC)  # 16:00 in Ho Chi Minh City
    after = before + timedelta(hours=2)
    try:
        assert await enqueue_due(replicas[0], schedule, before) == 0
        counts = await asyncio.gather(*(enqueue_due(r, schedule, after) for r in replicas),
                                      *(enqueue_due(r, schedule, after + timedelta(minutes=5)) for r in replicas))
        districts = len(tree.root.children)
        assert sum(counts) == districts
        async with first.transaction(readonly=True) as session:
            rows = (await session.execute(select(reports.c.district_path, func.count()).group_by(
                reports.c.district_path))).all()
        assert len(rows) == districts and all(n == 1 for _, n in rows)
        # The next day is another period.
        assert await enqueue_due(replicas[1], schedule, after + timedelta(days=1)) == districts
    finally:
        await first.dispose()
        await second.dispose()


def test_schedule_format():
    assert Schedule.parse("") is None
    weekly = Schedule.parse("weekly:mon@08:00")
    monday = datetime(2021, 6, 21, 1, 0, tzinfo=UTC)  # Monday 08:00 in Ho Chi Minh City
    key, period = weekly.due(monday)
    assert key == "weekly:2021-06-21" and period.start.isoformat() == "2021-06-14" and period.end.isoformat() == "2021-06-20"
    assert weekly.due(monday + timedelta(days=1)) is None
    for wrong in ("daily", "daily@25:00", "monthly@08:00", "weekly:xyz@08:00"):
        try:
            Schedule.parse(wrong)
        except ValueError:
            continue
        raise AssertionError(wrong)
