"""Where a registration stands, in words a unit understands (its status page and the API)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .models import Registration
from .routing import ACCEPTED, DISTRICT, DUPLICATE, EXEMPT, EXEMPTIONS, RETURNED, SUBMITTED
from .text import Msg


@dataclass(frozen=True)
class Step:
    title: Msg
    done: bool
    at: datetime | None = None
    current: bool = False


def stage(registration: Registration) -> str:
    if registration.batch_id is not None:
        return "forwarded"
    if registration.status == ACCEPTED and registration.list_id is not None:
        return "sent"
    return registration.status


def headline(registration: Registration) -> tuple[Msg, Msg, str]:
    """(title, explanation, badge tone) of the registration's current stage."""
    office = Msg("Phòng Văn hóa và Thông tin quận/huyện", "the district focal point") \
        if registration.receiver == DISTRICT else Msg("UBND phường/xã", "the commune People's Committee")
    current = stage(registration)
    if current == "forwarded":
        how = (Msg("Sở gửi tên đăng nhập và mật khẩu qua e-mail đơn vị đã khai.", "The city DIC e-mails the account "
                   "to the address the unit gave.") if registration.contact_email else
               Msg("Đơn vị không khai e-mail: Sở gửi tài khoản về quận/huyện qua Kênh hỗ trợ, quận/huyện chuyển lại "
                   "cho đơn vị.", "No e-mail was given: the city DIC sends the account to the district through the "
                   "Support Channel, and the district hands it over."))
        return (Msg("Đã chuyển Sở Thông tin và Truyền thông để cấp tài khoản", "Forwarded to the city DIC for an account"),
                Msg(f"Danh sách có đơn vị đã được chuyển lên Sở. {how.vi}", f"The unit was forwarded to the city. "
                    f"{how.en}"), "green")
    if current == "sent":
        return (Msg("Đã được duyệt và gửi lên quận/huyện", "Accepted and sent to the district"),
                Msg("UBND phường/xã đã duyệt và gửi danh sách lên Phòng Văn hóa và Thông tin; quận/huyện sẽ chuyển lên Sở.",
                    "The commune accepted it and sent its list to the district, which forwards it to the city."),
                "green")
    if current == ACCEPTED:
        return (Msg("Đã được duyệt", "Accepted"),
                Msg(f"{office.vi} đã duyệt đăng ký; danh sách sẽ được chuyển tiếp để cấp tài khoản.",
                    f"{office.en[0].upper()}{office.en[1:]} accepted the registration; it will be passed on for an account."),
                "green")
    if current == RETURNED:
        reason = registration.review_reason or ""
        return (Msg("Bị trả lại", "Returned"),
                Msg(f"Lý do: {reason}. Hãy sửa thông tin và đăng ký lại.", f"Reason: {reason}. Correct the details "
                    "and register again."), "red")
    if current == DUPLICATE:
        return (Msg("Trùng với một đăng ký khác", "Duplicate of another registration"),
                Msg("Đơn vị đã được đăng ký trước đó; đăng ký này không được xử lý tiếp.",
                    "The unit was already registered; this registration is not processed further."), "grey")
    if current == EXEMPT:
        reason = EXEMPTIONS.get(registration.exempt_reason or "")
        return (Msg("Không phải triển khai", "Exempt"),
                Msg(f"Lý do: {reason.label_vi if reason else ''}. Đơn vị không cần triển khai lại hệ thống của Thành phố.",
                    f"Reason: {reason.label_en if reason else ''}. The unit need not deploy the city system."), "grey")
    return (Msg(f"Đang chờ {office.vi} xem xét", f"Awaiting review by {office.en}"),
            Msg("Đăng ký đã được tiếp nhận. Kết quả sẽ hiện trên trang này.",
                "The registration was received. The answer will show on this page."), "yellow")


def steps(registration: Registration) -> list[Step]:
    commune = registration.receiver != DISTRICT
    reviewed = registration.status != SUBMITTED
    result = [
        Step(Msg("Đã tiếp nhận đăng ký", "Registration received"), True, registration.submitted_at),
        Step(Msg("UBND phường/xã duyệt" if commune else "Phòng Văn hóa và Thông tin duyệt",
                 "Reviewed by the commune" if commune else "Reviewed by the district"), reviewed,
             registration.reviewed_at, current=not reviewed),
    ]
    if registration.status in (RETURNED, DUPLICATE, EXEMPT):
        return result
    if commune:
        result.append(Step(Msg("Gửi lên Phòng Văn hóa và Thông tin quận/huyện", "Sent to the district"),
                           registration.list_id is not None, registration.sent_at,
                           current=reviewed and registration.list_id is None))
    ready = registration.status == ACCEPTED and (not commune or registration.list_id is not None)
    result.append(Step(Msg("Chuyển Sở Thông tin và Truyền thông", "Forwarded to the city DIC"),
                       registration.batch_id is not None, registration.forwarded_at,
                       current=ready and registration.batch_id is None))
    result.append(Step(Msg("Sở cấp tài khoản cho đơn vị", "The city DIC issues the unit's account"), False,
                       current=registration.batch_id is not None))
    return result
