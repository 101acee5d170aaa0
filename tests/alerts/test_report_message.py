"""A district's deployment report (reporting.report.published) appears in its Support Channel
thread with the title, the period, the headline counts and links to the files on reporting."""
from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from libs.common.auth import Role
from libs.common.events.reporting import ReportPublished, ReportPublishedData
from tests.services.conftest import DEMO_DISTRICT, OTHER_DISTRICT, eventually


def report(district: str = DEMO_DISTRICT, **overrides) -> ReportPublished:  # noqa: ANN003
    report_id = uuid.uuid4()
    data = {"report_id": report_id, "district_path": district, "title": "Báo cáo kết quả triển khai tháng 6/2021",
            "period_start": date(2021, 6, 1), "period_end": date(2021, 6, 30), "generated_at": datetime.now(UTC),
            "trigger": "on_demand", "xlsx_path": f"/reports/{report_id}.xlsx", "pdf_path": f"/reports/{report_id}.pdf",
            "summary": {"submitted": 42, "live": 37}, "by_name": "Phòng VH-TT Cần Giờ", **overrides}
    return ReportPublished(producer="reporting", jurisdiction=district, data=ReportPublishedData(**data))


async def test_a_published_report_lands_in_the_districts_thread(alerts_factory):
    async with alerts_factory() as a:
        event = report()
        await a.sender.send(event, event)  # delivered twice: one message
        hostile = report(xlsx_path="https://evil.example/x.xlsx", pdf_path="//evil.example/y.pdf",
                         title="Báo cáo lần 2")
        await a.sender.send(hostile)
        focal = a.html(Role.DISTRICT_FOCAL, DEMO_DISTRICT)

        async def posted():
            page = await a.client.get("/support/787", headers=focal)
            return "Báo cáo lần 2" in page.text and page

        page = await eventually(posted, what="the report in the district's thread")
        assert page.text.count("Báo cáo kết quả triển khai tháng 6/2021") == 1
        assert "01/06/2021" in page.text and "30/06/2021" in page.text and "Đơn vị đăng ký" in page.text
        assert f'href="http://reporting.test/reports/{event.data.report_id}.xlsx"' in page.text
        assert f'href="http://reporting.test/reports/{event.data.report_id}.pdf"' in page.text
        assert "evil.example" not in page.text  # only paths on the reporting service become links
        city = await a.client.get("/support/787", headers=a.html(Role.CITY_DIC, "79"))
        assert "Báo cáo kết quả triển khai" in city.text
        other = await a.client.get("/support/760", headers=a.html(Role.DISTRICT_FOCAL, OTHER_DISTRICT))
        assert "Báo cáo kết quả triển khai" not in other.text
