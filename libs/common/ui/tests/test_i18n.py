"""Catalogue loading, merging and locale negotiation."""
from __future__ import annotations

import textwrap
from pathlib import Path

from starlette.requests import Request

from libs.common.ui import ROLE_LABELS, get_translations, negotiate_locale, role_label
from libs.common.ui.i18n import current_locale, ngettext, normalize_locale, set_current_locale


def _request(query: str = "", cookie: str | None = None) -> Request:
    headers = [(b"cookie", cookie.encode())] if cookie else []
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": query.encode(),
                    "headers": headers, "root_path": ""})


def test_vietnamese_is_translated_and_english_is_identity():
    assert get_translations("vi").gettext("Help") == "Trợ giúp"
    assert get_translations("vi").gettext("Ho Chi Minh City") == "TP. Hồ Chí Minh"
    assert get_translations("en").gettext("Help") == "Help"
    assert get_translations("vi").gettext("A string nobody translated") == "A string nobody translated"


def test_unsupported_language_falls_back_to_vietnamese():
    assert get_translations("fr").gettext("Help") == "Trợ giúp"
    assert normalize_locale("en-GB") == "en"
    assert normalize_locale("vi_VN") == "vi"
    assert normalize_locale("zz") is None


def test_translations_are_cached():
    assert get_translations("vi") is get_translations("vi")


def test_service_catalogue_is_merged_over_the_common_one(tmp_path: Path):
    po = tmp_path / "vi" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    po.write_text(textwrap.dedent('''\
        msgid ""
        msgstr ""
        "Language: vi\\n"
        "Content-Type: text/plain; charset=utf-8\\n"
        "Plural-Forms: nplurals=1; plural=0;\\n"

        msgid "Help"
        msgstr "Hướng dẫn"

        msgid "Register a unit"
        msgstr "Đăng ký đơn vị"
        '''), encoding="utf-8")
    merged = get_translations("vi", (tmp_path,))
    assert merged.gettext("Help") == "Hướng dẫn"
    assert merged.gettext("Register a unit") == "Đăng ký đơn vị"
    assert merged.gettext("Sign out") == "Đăng xuất"  # still the common catalogue
    assert get_translations("vi").gettext("Help") == "Trợ giúp"  # the common one is untouched
    # A service without an English catalogue: identity.
    assert get_translations("en", (tmp_path,)).gettext("Register a unit") == "Register a unit"


def test_plural_rules():
    assert ngettext("%(n)s unit", "%(n)s units", 1, lang="en") == "%(n)s unit"
    assert ngettext("%(n)s unit", "%(n)s units", 5, lang="en") == "%(n)s units"
    assert get_translations("vi").plural(5) == 0


def test_negotiation_order():
    assert negotiate_locale(_request()) == "vi"
    assert negotiate_locale(_request("lang=en")) == "en"
    assert negotiate_locale(_request(cookie="khaibao_lang=en")) == "en"
    assert negotiate_locale(_request("lang=vi", cookie="khaibao_lang=en")) == "vi"
    assert negotiate_locale(_request("lang=xx", cookie="khaibao_lang=en")) == "en"
    assert negotiate_locale(_request(cookie="khaibao_lang=de")) == "vi"


def test_role_labels_in_both_languages():
    expected_vi = {
        "city_dic": "Cán bộ Sở Thông tin và Truyền thông",
        "district_focal": "Đầu mối Phòng Văn hóa và Thông tin quận/huyện",
        "commune_focal": "Đầu mối UBND phường/xã",
        "health_officer": "Cán bộ Trung tâm Y tế quận/huyện",
        "unit_admin": "Quản trị đơn vị",
        "gate_staff": "Nhân viên kiểm soát cổng",
        "interop_client": "Hệ thống liên thông",
    }
    assert set(ROLE_LABELS) == set(expected_vi)
    for role, label in expected_vi.items():
        assert role_label(role) == label
        assert role_label(role, "vi") == label
    assert role_label("city_dic", "en") == "City DIC officer"
    assert role_label("gate_staff", "en") == "Gate staff"
    assert role_label("astronaut") == "astronaut"


def test_role_label_follows_the_current_request_language():
    token = set_current_locale("en")
    try:
        assert current_locale() == "en"
        assert role_label("unit_admin") == "Unit administrator"
    finally:
        from libs.common.ui.i18n import _current_locale

        _current_locale.reset(token)
    assert role_label("unit_admin") == "Quản trị đơn vị"
