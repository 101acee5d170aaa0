"""The landing page of the local run."""
from __future__ import annotations

from .conftest import CONSOLE_LINKS, DEMO_ACCOUNTS, PUBLIC_LINK, assert_csp_clean, client_for


async def test_landing_lists_the_five_consoles_in_vietnamese(landing_app):
    async with client_for(landing_app) as c:
        response = await c.get("/")
    assert response.status_code == 200
    html = response.text
    assert '<html lang="vi">' in html
    assert "Hệ thống khai báo y tế điện tử" in html
    assert "Trang quản trị dành cho cán bộ" in html
    assert html.count('class="card card--link"') == 5
    for link in CONSOLE_LINKS:
        assert link["title_vi"] in html
        assert f'href="{link["url"]}"' in html
    assert "Đơn vị đăng ký, đầu mối duyệt danh sách." in html  # description_vi
    # the public demo declaration, apart from the consoles
    assert "Dành cho người dân và khách" in html
    assert PUBLIC_LINK["title_vi"] in html and f'href="{PUBLIC_LINK["url"]}"' in html
    assert_csp_clean(html)


async def test_landing_lists_the_demo_sign_ins(landing_app):
    async with client_for(landing_app) as c:
        html = (await c.get("/")).text
    assert "Tài khoản đăng nhập thử" in html
    for account in DEMO_ACCOUNTS:
        assert f'<td data-label="Tên đăng nhập">{account["username"]}</td>' in html
        assert f'<td data-label="Mật khẩu">{account["password"]}</td>' in html
        assert account["jurisdiction"] in html
    assert "Cán bộ Sở Thông tin và Truyền thông" in html  # from the role code
    assert "Đầu mối quận" in html  # a given label is kept
    assert 'href="/#help"' in html and 'id="help"' in html


async def test_landing_in_english(landing_app):
    async with client_for(landing_app) as c:
        response = await c.get("/?lang=en")
        html = response.text
        assert response.headers["set-cookie"].startswith("khaibao_lang=en;")
        assert "Consoles for officials" in html and "Demo sign-ins" in html
        for link in CONSOLE_LINKS:
            assert link["title_en"] in html
        assert "Units register, focal points review the lists." in html
        assert "City DIC officer" in html
        assert "Hệ thống khai báo y tế điện tử" not in html
        assert_csp_clean(html)
        assert (await c.get("/healthz")).text == "ok"
        missing = await c.get("/nowhere", headers={"accept": "text/html"})
        assert missing.status_code == 404 and "Page not found" in missing.text
