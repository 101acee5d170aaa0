"""Events produced by the reporting service (reports delivered to the city).

- ``reporting.report.published``: a district's deployment report to the city (circular
  2.3) was generated, on demand or on schedule. Notification posts it into the district's
  Support Channel thread with the city, with links to download the .xlsx and the PDF from
  reporting (downloads are behind sign-in and jurisdiction checks there; the event holds
  no file and no personal data). ``jurisdiction`` and ``data.district_path`` are the
  district.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal
from uuid import UUID

from .envelope import Event, EventData, register


class ReportPublishedData(EventData):
    report_id: UUID
    district_path: str
    title: str  # Vietnamese title shown in the Support Channel
    period_start: date
    period_end: date
    generated_at: datetime
    trigger: Literal["on_demand", "scheduled"]
    xlsx_path: str  # path on the reporting service, e.g. /reports/{report_id}.xlsx
    pdf_path: str
    summary: dict[str, int]  # headline counts (units registered, live, declarations, ...)
    by_name: str = ""  # who asked for it (empty when scheduled)


@register
class ReportPublished(Event):
    type: Literal["reporting.report.published"] = "reporting.report.published"
    data: ReportPublishedData
    key_field: ClassVar[str] = "report_id"
