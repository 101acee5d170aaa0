"""Rendering of base, console, public, error and macros through a tiny FastAPI app."""
from __future__ import annotations

import asyncio
import re
import textwrap
from pathlib import Path

import pytest
from fastapi import Request

from libs.common.ui import make_templates
from libs.common.ui.templates import STATIC_PREFIX

from .conftest import assert_csp_clean, build_app, client_for

PAGES = ["/console", "/plain-console", "/public", "/macros", "/error", "/missing", "/crash"]


async def test_console_is_vietnamese_by_default(client):
    response = await client.get("/console")
    assert response.status_code == 200
    html = response.text
    assert '<html lang="vi">' in html
    assert "Hệ thống khai báo y tế điện tử" in html
    assert "TP. Hồ Chí Minh" in html
    assert "Chuyển đến nội dung chính" in html and 'href="#main"' in html
    # the signed-in user, with the translated role label, and a POST sign-out with CSRF
    assert "Nguyễn Thị Lan" in html
    assert "Đầu mối Phòng Văn hóa và Thông tin quận/huyện" in html
    assert re.search(r'<form[^>]*method="post"[^>]*action="/signout"', html)
    assert '<input type="hidden" name="csrf_token" value="csrf-123">' in html
    assert ">Đăng xuất<" in html
    # nav (labels go through gettext), current page marked
    assert '<a class="site-nav__link" href="/console" aria-current="page">Danh sách đơn vị</a>' in html
    assert '>Trợ giúp</a>' in html
    # help link and language switch
    assert 'class="help-link" href="/help"' in html
    assert 'href="/console?lang=en"' in html and ">English<" in html
    # flash messages, escaped, with unknown levels shown as info
    assert "Hoàn tất:" in html and "Đã lưu đơn vị." in html
    assert 'role="alert"' in html and "Thiếu số điện thoại &lt;b&gt;." in html
    assert "flash--info" in html
    # footer
    assert "Sở Thông tin và Truyền thông vận hành" in html
    assert response.headers["content-language"] == "vi"
    assert "set-cookie" not in response.headers


async def test_english_with_query_parameter_sets_the_cookie(client):
    response = await client.get("/console?lang=en&page=2")
    assert response.status_code == 200
    html = response.text
    assert '<html lang="en">' in html
    assert "Electronic health declaration" in html
    assert "Ho Chi Minh City" in html
    assert "District focal point" in html
    assert ">Sign out<" in html
    assert "Hệ thống khai báo y tế điện tử" not in html
    assert 'href="/console?page=2&amp;lang=vi"' in html and ">Tiếng Việt<" in html
    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 1
    cookie = cookies[0].lower()
    assert cookie.startswith("khaibao_lang=en;")
    assert "max-age=31536000" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    # the cookie is remembered by the next request without ?lang=
    again = await client.get("/public")
    assert '<html lang="en">' in again.text and "Electronic health declaration" in again.text
    # and switching back to Vietnamese resets it
    back = await client.get("/public?lang=vi")
    assert "Hệ thống khai báo y tế điện tử" in back.text
    assert back.headers["set-cookie"].startswith("khaibao_lang=vi;")


async def test_render_sets_the_cookie_even_without_the_middleware():
    async with client_for(build_app(with_middleware=False)) as c:
        response = await c.get("/plain-console?lang=en")
        assert "Sign out" in response.text
        assert response.headers["set-cookie"].startswith("khaibao_lang=en;")
        later = await c.get("/plain-console")
        assert "Sign out" in later.text


async def test_middleware_sets_the_cookie_on_any_response(client):
    response = await client.get(f"{STATIC_PREFIX}/khaibao.css?lang=en")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert response.headers["set-cookie"].startswith("khaibao_lang=en;")


async def test_public_page_has_no_menu_and_no_user(client):
    response = await client.get("/public")
    html = response.text
    assert response.status_code == 200
    assert 'class="layout-public"' in html
    assert "Hệ thống khai báo y tế điện tử" in html
    assert "site-nav" not in html and "Nguyễn Thị Lan" not in html and "/signout" not in html
    assert 'class="narrow"' in html
    assert 'class="help-link" href="/help"' in html  # help on every page
    assert "Giới tính" in html and 'value="female" checked' in html


async def test_error_page(client):
    response = await client.get("/error")
    assert response.status_code == 403
    assert "Không có quyền truy cập" in response.text
    assert "Lỗi 403" in response.text
    assert 'href="/">Về trang chủ</a>' in response.text


async def test_http_errors_are_friendly_and_hide_details(client):
    response = await client.get("/missing")
    assert response.status_code == 404
    assert "Không tìm thấy trang" in response.text
    assert "secret internal detail" not in response.text
    english = await client.get("/no/such/page?lang=en")
    assert english.status_code == 404 and "Page not found" in english.text


async def test_crash_shows_no_stack_trace(client):
    response = await client.get("/crash")
    assert response.status_code == 500
    assert "Đã xảy ra sự cố" in response.text
    for leak in ("Traceback", "RuntimeError", "hunter2"):
        assert leak not in response.text


async def test_api_clients_still_get_json_errors(app):
    async with client_for(app, headers={"accept": "application/json"}) as c:
        response = await c.get("/missing")
        assert response.status_code == 404
        assert response.json() == {"detail": "secret internal detail"}


async def test_macros(client):
    html = (await client.get("/console")).text
    # field with hint and error: described by both, marked invalid, error in Vietnamese
    assert re.search(
        r'<input class="field__control" type="tel" id="f-phone" name="phone" value="0909" required'
        r' autocomplete="tel" inputmode="tel" aria-describedby="f-phone-hint f-phone-error" aria-invalid="true">',
        html,
    )
    assert '<p class="field__error" id="f-phone-error"><span class="visually-hidden">Lỗi:</span>' in html
    assert '<label class="field__label" for="f-unit_name">Tên đơn vị' in html
    assert "(bắt buộc)" in html
    assert '<option value="market" selected>Chợ</option>' in html
    assert 'type="checkbox" id="f-ncovi" name="ncovi" value="on" checked' in html
    assert '<a href="#f-phone">Số điện thoại phải có 10 chữ số.</a>' in html  # error summary
    # table: labels for stacked phone layout, escaped cells, badges kept as markup
    assert '<td data-label="Tên đơn vị">Công ty TNHH Hải sản Long Hòa &lt;script&gt;</td>' in html
    assert '<span class="badge badge--green">Đã cấp tài khoản</span>' in html
    assert '<span class="badge badge--yellow">Chờ duyệt</span>' in html
    assert '<span class="badge badge--red">Nghi nhiễm</span>' in html
    assert '<span class="badge badge--grey">Xám</span>' in html
    # pagination keeps the filters and marks the current page
    assert "Trang 3 / 12" in html
    assert 'href="/console?district=783&amp;page=2"' in html
    assert '<span class="pagination__link pagination__link--current" aria-current="page">3</span>' in html
    assert "&hellip;" in html
    # progress is a real <progress> element with the numbers written out
    assert '<progress class="progress__bar" id="progress-communes" max="312" value="128">41%</progress>' in html
    assert "128 / 312 (41%)" in html
    assert "<dd>—</dd>" in html


async def test_single_page_has_no_pagination(client):
    html = (await client.get("/macros")).text
    assert "pagination__list" not in html


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("lang", ["vi", "en"])
async def test_no_inline_style_or_script(client, path, lang):
    response = await client.get(f"{path}?lang={lang}")
    assert response.headers["content-type"].startswith("text/html")
    assert_csp_clean(response.text)
    assert '<link rel="stylesheet" href="/static/common/khaibao.css?v=' in response.text


async def test_static_files_are_served(client):
    css = await client.get(f"{STATIC_PREFIX}/khaibao.css")
    assert css.status_code == 200 and ".site-header" in css.text
    logo = await client.get(f"{STATIC_PREFIX}/logo.svg")
    assert logo.status_code == 200 and logo.headers["content-type"].startswith("image/svg")


async def test_concurrent_requests_keep_their_own_language(app):
    async with client_for(app) as c:
        langs = ["vi", "en"] * 25
        responses = await asyncio.gather(*(c.get(f"/console?lang={lang}") for lang in langs))
    for lang, response in zip(langs, responses):
        assert f'<html lang="{lang}">' in response.text
        if lang == "vi":
            assert "Đăng xuất" in response.text and "Sign out" not in response.text
        else:
            assert "Sign out" in response.text and "Đăng xuất" not in response.text
    # the shared base environment was never switched to English
    templates = app.state.templates
    probe = '{{ _("Help") }}'
    assert templates.env.from_string(probe).render() == "Trợ giúp"
    assert templates.env_for("en").from_string(probe).render() == "Help"
    assert templates.env_for("vi").from_string(probe).render() == "Trợ giúp"


async def test_service_templates_and_catalogue_come_first(tmp_path: Path):
    templates_dir = tmp_path / "templates"
    templates_dir.mkdir()
    (templates_dir / "error.html").write_text(
        '{% extends "public.html" %}{% block content %}<p>{{ _("Help") }} {{ status_code }}</p>{% endblock %}',
        encoding="utf-8",
    )
    (templates_dir / "page.html").write_text(
        '{% extends "console.html" %}{% block content %}<p>{{ _("Register a unit") }}</p>{% endblock %}',
        encoding="utf-8",
    )
    po = tmp_path / "locale" / "vi" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    po.write_text(textwrap.dedent('''\
        msgid ""
        msgstr ""
        "Content-Type: text/plain; charset=utf-8\\n"

        msgid "Register a unit"
        msgstr "Đăng ký đơn vị"
        '''), encoding="utf-8")
    templates = make_templates(templates_dir, locale_dirs=(tmp_path / "locale",))

    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/page")
    async def page(request: Request):
        return templates.render(request, "page.html", {"page_title": "Đơn vị"})

    @app.get("/err")
    async def err(request: Request):
        return templates.render_error(request, 418)

    async with client_for(app) as c:
        html = (await c.get("/page")).text
        assert "<p>Đăng ký đơn vị</p>" in html
        assert "Trợ giúp" in html  # common strings still translated
        assert 'class="help-link" href="/help"' in html  # default help URL
        assert "site-nav" not in html and "userbar" not in html  # no nav, no user
        err_response = await c.get("/err")
        assert err_response.status_code == 418 and "<p>Trợ giúp 418</p>" in err_response.text


async def test_template_response_still_works_on_the_base_environment(app):
    templates = app.state.templates

    @app.get("/legacy")
    async def legacy(request: Request):
        return templates.TemplateResponse(request, "error.html", {"status_code": 404, "static_url": str,
                                                                 "languages": [], "home_url": "/",
                                                                 "help_url": "/help", "lang": "vi"})

    async with client_for(app) as c:
        assert "Đã xảy ra lỗi" in (await c.get("/legacy")).text


def test_table_macro_accepts_a_caller_body_and_escapes_values():
    templates = make_templates()
    env = templates.env_for("en")
    html = env.from_string(
        '{% import "macros.html" as ui %}'
        '{% call ui.table(["A", "B"]) %}<tr><td>custom row</td><td>{{ v }}</td></tr>{% endcall %}'
        '{{ ui.table(["A"], [], empty_text=none) }}'
        '{{ ui.field("x", "Label <i>", value=v) }}'
    ).render(v="<b>bold</b>")
    assert "<tr><td>custom row</td><td>&lt;b&gt;bold&lt;/b&gt;</td></tr>" in html
    assert '<td class="table__empty" colspan="1">No data to show.</td>' in html
    assert 'value="&lt;b&gt;bold&lt;/b&gt;"' in html and "Label &lt;i&gt;" in html
