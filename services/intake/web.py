"""Helpers of the intake pages: the signed-in official, flash messages, labels.

CSRF: every console form carries the session's token, checked for all services by
libs/common/csrf.py.
"""
from __future__ import annotations

import hashlib
from urllib.parse import urlencode
from uuid import UUID

from fastapi import HTTPException, Request

from libs.common.auth import Role
from libs.common.console import console_user
from libs.common.runtime import Runtime

from .registration.spam import reason_labels
from .routing import EXEMPTIONS, STATUS_LABELS, STATUS_TONES, UNIT_TYPES
from .text import Msg, local_time

REVIEWERS = (Role.COMMUNE_FOCAL, Role.DISTRICT_FOCAL)

# Flash messages named in the query string (?done=accepted): never data, only a key.
DONE = {
    "accepted": Msg("Đã duyệt đăng ký.", "Registration accepted."),
    "returned": Msg("Đã trả lại đăng ký cho đơn vị kèm lý do.", "Registration returned to the unit with the reason."),
    "duplicate": Msg("Đã đánh dấu đăng ký trùng lặp.", "Registration marked as a duplicate."),
    "bulk_accepted": Msg("Đã duyệt các đăng ký đã chọn.", "The selected registrations were accepted."),
    "bulk_returned": Msg("Đã trả lại các đăng ký đã chọn cho đơn vị kèm lý do.",
                         "The selected registrations were returned to their units with the reason."),
    "exempt": Msg("Đã ghi nhận đơn vị không phải triển khai.", "Unit recorded as exempt."),
    "sent": Msg("Đã gửi danh sách lên Phòng Văn hóa và Thông tin quận/huyện.", "List sent to the district focal point."),
    "forwarded": Msg("Đã chuyển danh sách lên Sở Thông tin và Truyền thông qua Kênh hỗ trợ.",
                     "Batch forwarded to the city DIC through the Support Channel."),
    "uploaded": Msg("Đã nhận tệp; hệ thống đang kiểm tra từng dòng.", "File received; every row is being checked."),
    "approved": Msg("Đã tiếp nhận danh sách; hệ thống đang nhập.", "List accepted; it is being imported."),
    "dismissed": Msg("Đã không tiếp nhận danh sách; người gửi sẽ nhận thư báo lý do.",
                     "List dismissed; the sender is told why by e-mail."),
    "discarded": Msg("Đã loại bỏ các đăng ký nghi ngờ spam đã chọn (ghi nhận người thực hiện và thời điểm).",
                     "The selected suspected spam was discarded (who and when are recorded)."),
    "registered": Msg("Đăng ký đã được gửi. Hãy lưu lại đường dẫn của trang này để theo dõi kết quả.",
                      "Registration sent. Keep the address of this page to follow the answer."),
}


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def lang_of(request: Request) -> str:
    return getattr(request.state, "lang", None) or "vi"


def official(*roles: Role):
    """A console page: the signed-in principal (the CSRF token of its forms is set and
    checked by libs/common/csrf.py)."""
    return console_user(*roles)


def parse_id(value: str) -> UUID:
    """A record id from a page address; anything else is a page that does not exist."""
    try:
        return UUID(value)
    except ValueError:
        raise HTTPException(404) from None


def flash(request: Request) -> list[tuple[str, str]]:
    done = DONE.get(request.query_params.get("done", ""))
    return [("success", done.text(lang_of(request)))] if done else []


def with_done(url: str, key: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode({'done': key})}"


def labels(lang: str) -> dict:
    """Label helpers for the templates."""
    return {
        "type_label": lambda code: UNIT_TYPES[code].label(lang) if code in UNIT_TYPES else code,
        "status_label": lambda status: STATUS_LABELS[status].text(lang) if status in STATUS_LABELS else status,
        "status_tone": lambda status: STATUS_TONES.get(status, "grey"),
        "exemption_label": lambda code: EXEMPTIONS[code].label(lang) if code in EXEMPTIONS else (code or ""),
        "when": local_time,
        "spam_labels": lambda r: reason_labels(r, lang),
        "msg": lambda m: m.text(lang) if isinstance(m, Msg) else (m or ""),
    }


def render(request: Request, template: str, context: dict, status_code: int = 200, public: bool = False):  # noqa: ANN201
    lang = lang_of(request)
    runtime = runtime_of(request)
    full = {**labels(lang), "tree": runtime.tree, "static_intake": static_intake_url, **context}
    if public:
        full["home_url"] = "/d"   # a visitor's home is the districts' pages, not the officials' console
    full.setdefault("messages", flash(request))
    return request.app.state.templates.render(request, template, full, status_code=status_code)


_STATIC_VERSION: dict[str, str] = {}


def static_intake_url(name: str) -> str:
    """``/static/intake/<name>?v=<content hash>``."""
    from pathlib import Path

    version = _STATIC_VERSION.get(name)
    if version is None:
        path = Path(__file__).with_name("static") / "intake" / name
        version = hashlib.sha256(path.read_bytes()).hexdigest()[:10] if path.is_file() else ""
        _STATIC_VERSION[name] = version
    return f"/static/intake/{name}" + (f"?v={version}" if version else "")
