"""Vietnamese of the messages written in Python (errors, labels, signals).

The service's gettext catalogue holds the strings of its templates (a test keeps it to
exactly those); messages raised or chosen in Python are translated here, keyed by their
English text, so that every one reaches the visitor in Vietnamese first.
"""
VI = {
    # checks of the declaration (schemas.py, messages.py)
    "A CCCD number has exactly 12 digits.": "Số CCCD phải gồm đúng 12 chữ số.",
    "A CMND number has exactly 9 digits.": "Số CMND phải gồm đúng 9 chữ số.",
    "A name has letters and spaces only, no digits or symbols.":
        "Họ tên chỉ gồm chữ cái và khoảng trắng, không có chữ số hay ký hiệu.",
    "A passport number has 6 to 9 letters or digits, such as C1234567.":
        "Số hộ chiếu gồm 6 đến 9 chữ cái hoặc chữ số, ví dụ C1234567.",
    "An ID card number has 12 digits (CCCD) or 9 digits (CMND).":
        "Số giấy tờ tùy thân gồm 12 chữ số (CCCD) hoặc 9 chữ số (CMND).",
    "Enter the number of the CCCD, CMND or passport.": "Vui lòng nhập số CCCD, CMND hoặc hộ chiếu.",
    "Write the date of birth as dd/mm/yyyy, or only the year.":
        "Ghi ngày sinh theo dạng ngày/tháng/năm (dd/mm/yyyy), hoặc chỉ ghi năm sinh.",
    "This date does not exist: check the day and the month.": "Ngày này không có thật: kiểm tra lại ngày và tháng.",
    "The year of birth must be 1900 or later.": "Năm sinh phải từ 1900 trở về sau.",
    "The date of birth cannot be in the future.": "Ngày sinh không thể ở tương lai.",
    "Write the full name as on the ID document.": "Ghi đầy đủ họ tên như trên giấy tờ tùy thân.",
    "Enter a phone number of 10 or 11 digits starting with 0, such as 0909 123 456.":
        "Nhập số điện thoại 10 hoặc 11 chữ số, bắt đầu bằng 0, ví dụ 0909 123 456.",
    "Enter a phone number where the health center can reach you.":
        "Nhập số điện thoại để cơ quan y tế liên lạc khi cần.",
    "Choose the province, then the district, then the commune.":
        "Chọn tỉnh/thành phố, rồi quận/huyện, rồi phường/xã cho đúng.",
    "Choose the province or city.": "Vui lòng chọn tỉnh/thành phố.",
    "Choose the district.": "Vui lòng chọn quận/huyện.",
    "Choose the commune or ward.": "Vui lòng chọn phường/xã.",
    "Choose among the listed answers.": "Chỉ chọn trong các câu trả lời có sẵn.",
    "Choose one of the options.": "Vui lòng chọn một trong các lựa chọn.",
    "Choose yes or no.": "Vui lòng chọn có hoặc không.",
    "Enter a whole number.": "Vui lòng nhập một số nguyên.",
    "The number is too large.": "Số quá lớn.",
    "The number is too small.": "Số quá nhỏ.",
    "This field is required.": "Vui lòng điền thông tin này.",
    "This field is not part of the form.": "Trường này không thuộc biểu mẫu.",
    "This text is too long: at most %(max_length)s characters.":
        "Nội dung quá dài: tối đa %(max_length)s ký tự.",
    "This value is not valid.": "Giá trị này không hợp lệ.",
    "The request is not valid JSON.": "Yêu cầu không phải JSON hợp lệ.",
    "Tick the box to confirm the declaration and the use of the data.":
        "Vui lòng đánh dấu ô xác nhận lời khai và đồng ý sử dụng dữ liệu.",
    "Add at least one person.": "Cần khai báo ít nhất một người.",
    "At most %(max_length)s people can declare together: send the others in a second form.":
        "Mỗi lần khai báo tối đa %(max_length)s người: những người còn lại vui lòng khai ở tờ khai khác.",
    "At most %(max)s people can declare together: send the others in a second form.":
        "Mỗi lần khai báo tối đa %(max)s người: những người còn lại vui lòng khai ở tờ khai khác.",
    "The venue code is not valid: scan the QR code at the gate again.":
        "Mã địa điểm không hợp lệ: vui lòng quét lại mã QR tại cổng.",
    "The form has expired: open it again and send it once more.":
        "Biểu mẫu đã hết hiệu lực: vui lòng mở lại và gửi lần nữa.",
    # an idempotency key sent again with another request (declare.py, pages.py)
    "This idempotency key was already used for a declaration with other details. "
    "Send a new key for a new declaration.":
        "Khóa chống gửi trùng (idempotency key) này đã được dùng cho một tờ khai có thông tin khác. "
        "Hãy gửi khóa mới cho tờ khai mới.",
    "This form had already been sent with other details, so nothing was saved. "
    "Check the details and press Send again to make a new declaration.":
        "Biểu mẫu này đã được gửi trước đó với thông tin khác nên lần này chưa được lưu. "
        "Vui lòng kiểm tra lại thông tin và bấm Gửi lần nữa để khai báo mới.",
    # the venue (declare.py)
    "This venue code does not exist. Scan the QR code at the gate again, or type the code printed under it.":
        "Mã địa điểm không tồn tại. Vui lòng quét lại mã QR tại cổng, hoặc nhập mã in bên dưới mã QR.",
    "Too many declarations are arriving at this venue right now. Wait %(seconds)s seconds, then send again.":
        "Địa điểm này đang nhận quá nhiều khai báo cùng lúc. Vui lòng đợi %(seconds)s giây rồi gửi lại.",
    "This venue no longer takes declarations. Ask the staff at the gate.":
        "Địa điểm này đã ngừng nhận khai báo. Vui lòng hỏi nhân viên tại cổng.",
    "This QR code has been replaced by a new one. Scan the new poster at the gate, or ask the staff.":
        "Mã QR này đã được thay bằng mã mới. Vui lòng quét mã trên áp phích mới tại cổng, hoặc hỏi nhân viên.",
    # the edge (web.py, pages.py, public.py)
    "The form is too large. Declare at most a few people at a time and keep the texts short.":
        "Biểu mẫu quá lớn. Mỗi lần chỉ khai cho vài người và ghi ngắn gọn.",
    "The form could not be read. Open the page again and send it once more.":
        "Không đọc được biểu mẫu. Vui lòng mở lại trang và gửi lần nữa.",
    "The page has expired. Open it again and repeat the action.":
        "Trang đã hết hiệu lực. Vui lòng mở lại và thực hiện lại thao tác.",
    "The system is busy and your declaration was not saved. Please press Send again in a few seconds.":
        "Hệ thống đang bận, tờ khai chưa được lưu. Vui lòng bấm Gửi lại sau vài giây.",
    "This declaration had already been sent: here is its result.":
        "Tờ khai này đã được gửi trước đó: đây là kết quả của lần gửi ấy.",
    "Health declaration": "Khai báo y tế",
    "Your health declaration": "Kết quả khai báo y tế",
    "Citizen ID card (CCCD, 12 digits)": "Căn cước công dân (CCCD, 12 số)",
    "Old ID card (CMND, 9 digits)": "Chứng minh nhân dân (CMND, 9 số)",
    "Passport": "Hộ chiếu",
    "GREEN": "XANH",
    "YELLOW": "VÀNG",
    "RED": "ĐỎ",
    "You may enter": "Được vào",
    "Show this code to the staff at the gate": "Xuất trình mã này cho nhân viên tại cổng",
    "Do not enter: tell the staff at the gate": "Không vào: báo ngay cho nhân viên tại cổng",
    # the questions (screening.py)
    "Fever": "Sốt",
    "Cough": "Ho",
    "Shortness of breath": "Khó thở",
    "Sore throat": "Đau họng",
    "Loss of taste or smell": "Mất vị giác hoặc khứu giác",
    "Fatigue": "Mệt mỏi",
    "Close contact with a confirmed or suspected case of COVID-19":
        "Tiếp xúc gần với ca bệnh hoặc người nghi ngờ mắc COVID-19",
    "Came from another country or territory": "Đến từ quốc gia hoặc vùng lãnh thổ khác",
    "Passed through a province or city with an outbreak": "Đi qua tỉnh/thành phố có dịch",
    "Someone at home or at work has a fever or a cough": "Trong gia đình hoặc cơ quan có người sốt hoặc ho",
    # the gate (gate/pages.py, casework.py)
    "Gate": "Cổng",
    "Entry counted.": "Đã ghi nhận lượt vào.",
    "Suspected case reported: the district health center and the commune are alerted.":
        "Đã báo ca nghi ngờ: Trung tâm Y tế quận/huyện và UBND phường/xã đã nhận cảnh báo.",
    "VALID": "HỢP LỆ",
    "Green: let the visitor in.": "Xanh: cho khách vào.",
    "VALID · YELLOW": "HỢP LỆ · VÀNG",
    "Let the visitor in, and remind them to watch their health.":
        "Cho khách vào và nhắc khách theo dõi sức khỏe.",
    "RED · DO NOT ADMIT": "ĐỎ · KHÔNG CHO VÀO",
    "Suspected case: keep the visitor apart, masked, and report the case.":
        "Nghi ngờ mắc bệnh: đưa khách ra khu riêng, đeo khẩu trang, và báo ca nghi ngờ.",
    "EXPIRED": "HẾT HẠN",
    "This QR code has expired: ask the visitor to declare again.":
        "Mã QR đã hết hạn: đề nghị khách khai báo lại.",
    "NOT VALID": "KHÔNG HỢP LỆ",
    "Not a genuine health declaration QR code: ask the visitor to declare.":
        "Không phải mã QR khai báo y tế thật: đề nghị khách khai báo.",
    "NOT RECOGNISED": "KHÔNG NHẬN RA",
    # the gate without network (gate/offline.py)
    "Health declaration gate": "Cổng khai báo y tế",
    "The declaration was not accepted: check the details with the visitor and declare again.":
        "Tờ khai không được chấp nhận: kiểm tra lại thông tin với khách và khai báo lại.",
    # a chip ID card read in part (idcards.py, gate/pages.py)
    "ID CARD READ IN PART": "CĂN CƯỚC ĐỌC ĐƯỢC MỘT PHẦN",
    "Scan the card again; if it still fails, declare for the visitor with what could be read.":
        "Hãy quét lại căn cước; nếu vẫn lỗi, khai báo hộ khách với những thông tin đã đọc được.",
    "Declare with what could be read": "Khai báo hộ với thông tin đã đọc được",
    "The ID card could be read only in part:": "Căn cước chỉ đọc được một phần:",
    "The fields that could be read are filled in; ask the visitor for the others.":
        "Các trường đọc được đã điền sẵn; hãy hỏi khách các trường còn lại.",
    "The ID number is missing.": "Thiếu số CCCD.",
    "The ID number has %(n)s digits: a CCCD number has exactly 12.":
        "Số CCCD đọc được có %(n)s chữ số, trong khi số CCCD phải có đúng 12 chữ số.",
    "The ID number has characters other than digits.": "Số CCCD có ký tự không phải chữ số.",
    "The full name is missing.": "Thiếu họ tên.",
    "The date of birth is missing.": "Thiếu ngày sinh.",
    "The date of birth %(value)s does not exist.": "Ngày sinh %(value)s không có thật.",
    "The date of birth %(value)s is in the future.": "Ngày sinh %(value)s ở tương lai.",
    "The date of birth “%(value)s” is not a date.": "Ngày sinh “%(value)s” không phải là một ngày.",
    "The card's issue date %(value)s does not exist.": "Ngày cấp %(value)s trên căn cước không có thật.",
    "The ID card code has %(n)s fields instead of 7: a field is missing.":
        "Mã trên căn cước có %(n)s trường thay vì 7: thiếu một trường.",
    "The ID card code has %(n)s fields instead of 7.": "Mã trên căn cước có %(n)s trường thay vì 7.",
    "Part of the ID card code could not be read.": "Một phần mã trên căn cước không đọc được.",
    "This is neither a health declaration QR code nor an ID card QR code.":
        "Đây không phải mã QR khai báo y tế, cũng không phải mã QR trên căn cước.",
    "Report a suspected case": "Báo ca nghi ngờ",
    "Tick the signs you saw, or describe them.": "Đánh dấu các dấu hiệu đã thấy, hoặc mô tả chúng.",
    "The note is too long: at most 1000 characters.": "Ghi chú quá dài: tối đa 1000 ký tự.",
    "This QR code is not a genuine health declaration QR code.": "Mã QR này không phải mã khai báo y tế thật.",
    "Scan the visitor's personal QR code, or leave this field empty.":
        "Quét mã QR cá nhân của khách, hoặc để trống ô này.",
    # the console (console.py)
    "Screening rules": "Tiêu chí sàng lọc",
    "The new rule set is active: every declaration from now on is screened with it.":
        "Bộ tiêu chí mới đã có hiệu lực: mọi tờ khai từ bây giờ được sàng lọc theo bộ này.",
    "The rule set was not saved, it is not valid:": "Chưa lưu bộ tiêu chí vì không hợp lệ:",
    # the two-person rule of the rule sets (screening.py, console.py)
    "Only an officer of the city health department (Sở Y tế) may propose, approve or withdraw a screening rule set.":
        "Không có quyền: chỉ cán bộ Sở Y tế thành phố được đề xuất, phê duyệt hoặc rút bộ tiêu chí sàng lọc.",
    "The proposer cannot approve their own rule set: another officer of the city health department must approve it.":
        "Người đề xuất không tự phê duyệt được: cần một người khác của Sở Y tế phê duyệt bộ tiêu chí này.",
    "This rule set is not waiting for approval any more.": "Bộ tiêu chí này không còn chờ phê duyệt.",
    "There is no rule set with this version.": "Không có bộ tiêu chí với phiên bản này.",
    "The rule set is proposed: it becomes active when another officer of the city health department approves it.":
        "Đã gửi đề xuất: bộ tiêu chí có hiệu lực khi một cán bộ khác của Sở Y tế phê duyệt.",
    "The proposal is withdrawn or declined: it will not become active.":
        "Đề xuất đã được rút hoặc bị từ chối: bộ tiêu chí này sẽ không có hiệu lực.",
    # subject requests (subject/service.py, subject/routes.py)
    "Requests of a person about their data": "Yêu cầu của người dân về dữ liệu cá nhân",
    "Enter the case or request reference.": "Vui lòng nhập số hồ sơ ca bệnh hoặc số hồ sơ yêu cầu.",
    "The reference is at most 60 characters.": "Số hồ sơ tối đa 60 ký tự.",
    "Enter the reason for this request.": "Vui lòng nhập lý do của yêu cầu này.",
    "Write the reason in a full sentence (10 to 500 characters).":
        "Ghi lý do thành một câu đầy đủ (từ 10 đến 500 ký tự).",
    "Enter the ID number (CCCD, CMND or passport), or the phone number.":
        "Vui lòng nhập số giấy tờ (CCCD, CMND hoặc hộ chiếu), hoặc số điện thoại.",
    "A phone number has 10 or 11 digits starting with 0, such as 0909 123 456.":
        "Số điện thoại gồm 10 hoặc 11 chữ số, bắt đầu bằng 0, ví dụ 0909 123 456.",
    "An ID number has 12 digits (CCCD), 9 digits (CMND) or 6 to 9 letters or digits (passport).":
        "Số giấy tờ gồm 12 chữ số (CCCD), 9 chữ số (CMND) hoặc 6 đến 9 chữ cái hoặc chữ số (hộ chiếu).",
    "Confirm the erasure (confirm: true).": "Vui lòng xác nhận việc xóa (confirm: true).",
    "Exporting or erasing needs the person's ID number: a phone number may be shared by a family, "
    "whose other members did not ask.":
        "Xuất hoặc xóa dữ liệu cần số giấy tờ của người yêu cầu: một số điện thoại có thể dùng chung cho "
        "cả gia đình, mà những người khác không yêu cầu.",
}
