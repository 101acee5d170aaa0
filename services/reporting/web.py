"""What the pages and the API of reporting share: the CSRF token of console forms, the
period and area filters, checked on the server against the caller's jurisdiction."""
from __future__ import annotations

import hashlib
import hmac
from datetime import date, timedelta

from fastapi import Depends, HTTPException, Request

from libs.common.auth import Forbidden, Principal, Role
from libs.common.console import console_user

from .service import Period, today

MAX_DAYS = 366
DEFAULT_DAYS = 14


class BadFilter(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(400, detail)


def csrf_token(request: Request, principal: Principal) -> str:
    """Bound to the session's token (its ``jti``): a form from another sign-in is refused."""
    key = request.app.state.runtime.settings.secret_key.encode()
    subject = f"csrf:{principal.account_id}:{principal.claims.get('jti', '')}".encode()
    return hmac.new(key, subject, hashlib.sha256).hexdigest()[:32]


def official(*roles: Role):
    """A console page: the signed-in principal, and the CSRF token of its forms."""
    dependency = console_user(*roles)

    def wrapped(request: Request, principal: Principal = Depends(dependency)) -> Principal:
        if not getattr(request.state, "csrf_token", None):
            request.state.csrf_token = csrf_token(request, principal)
        return principal

    return wrapped


def check_csrf(request: Request, principal: Principal, sent: str) -> None:
    """A form posted with the session cookie must carry the page's token; a request with
    its token in the Authorization header cannot be forged by another site."""
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return
    expected = getattr(request.state, "csrf_token", None) or csrf_token(request, principal)
    if not hmac.compare_digest(sent or "", expected):
        raise HTTPException(400, "Biểu mẫu đã hết hạn, hãy tải lại trang và làm lại / "
                                 "The form has expired; reload the page and try again")


def parse_day(value: str | None, what: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise BadFilter(f"{what} không hợp lệ: hãy nhập ngày theo dạng năm-tháng-ngày, ví dụ 2021-06-20 / "
                        "invalid date, use YYYY-MM-DD") from None


def period_from(start: str | None, end: str | None, *, default_days: int = DEFAULT_DAYS) -> Period:
    """The period of the filters (local days, both included); the last ``default_days`` by default."""
    last = parse_day(end, "Ngày kết thúc") or today()
    first = parse_day(start, "Ngày bắt đầu") or last - timedelta(days=default_days - 1)
    if first > last:
        raise BadFilter("Ngày bắt đầu phải trước hoặc bằng ngày kết thúc / the start date must not be after the end")
    if (last - first).days + 1 > MAX_DAYS:
        raise BadFilter(f"Khoảng thời gian tối đa là {MAX_DAYS} ngày / the period is at most {MAX_DAYS} days")
    return Period(first, last)


def area_for(request: Request, principal: Principal, area: str | None) -> str:
    """The area asked for (the caller's own by default); outside the jurisdiction -> 403."""
    tree = request.app.state.runtime.tree
    path = (area or "").strip() or principal.jurisdiction
    if not principal.covers(path):
        raise Forbidden("Địa bàn này nằm ngoài phạm vi quản lý của bạn / This area is outside your jurisdiction")
    if area and tree.get(path) is None:
        raise HTTPException(404, "Không tìm thấy địa bàn / Unknown area")
    return path  # a jurisdiction outside the tree sees an empty dashboard
