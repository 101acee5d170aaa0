"""Tiny FastAPI apps that render the common templates, and demo landing data."""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Request

from libs.common.ui import LocaleMiddleware, install_error_pages, make_templates, mount_static
from libs.common.ui.landing import create_landing_app

TEST_TEMPLATES = Path(__file__).resolve().parent / "templates"

CONSOLE_LINKS = [
    {"service": "intake", "title_vi": "Tiếp nhận đăng ký", "title_en": "Registrations",
     "url": "http://127.0.0.1:8101/console", "description_vi": "Đơn vị đăng ký, đầu mối duyệt danh sách.",
     "description_en": "Units register, focal points review the lists."},
    {"service": "provisioning", "title_vi": "Tài khoản và địa điểm", "title_en": "Accounts and venues",
     "url": "http://127.0.0.1:8102/console", "description": "Accounts, venues, QR posters."},
    {"service": "declaration", "title_vi": "Kiểm soát cổng", "title_en": "Gate console",
     "url": "http://127.0.0.1:8103/gate", "description": "Assisted declaration, ID card scan."},
    {"service": "notification", "title_vi": "Thông báo và Kênh hỗ trợ", "title_en": "Alerts and Support Channel",
     "url": "http://127.0.0.1:8104/console", "description": "Suspected-case alerts, Support Channel."},
    {"service": "reporting", "title_vi": "Báo cáo", "title_en": "Reports",
     "url": "http://127.0.0.1:8105/console", "description": "Dashboards and exports."},
]
PUBLIC_LINK = {"service": "public", "title_vi": "Khai báo y tế tại Chợ Bình Khánh (mẫu)",
               "title_en": "Health declaration at Binh Khanh market (demo)",
               "url": "http://127.0.0.1:8103/q/DEMO1234", "description": ""}
DEMO_ACCOUNTS = [
    {"role": "city_dic", "username": "city.dic", "password": "demo-city-2021", "jurisdiction": "TP. Hồ Chí Minh"},
    {"role_label": "Đầu mối quận", "username": "cangio.vhtt", "password": "demo-district-2021",
     "jurisdiction": "Huyện Cần Giờ"},
    {"role": "commune_focal", "username": "binhkhanh.ubnd", "password": "demo-commune-2021",
     "jurisdiction": "Xã Bình Khánh"},
    {"role": "gate_staff", "username": "cho.binhkhanh.cong1", "password": "demo-gate-2021",
     "jurisdiction": "Chợ Bình Khánh"},
]

STYLE_ATTR = re.compile(r"<[^>]*\sstyle\s*=", re.IGNORECASE)
EVENT_ATTR = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)


def assert_csp_clean(html: str) -> None:
    """No inline style attribute, inline event handler or inline script."""
    assert not STYLE_ATTR.search(html), "inline style attribute"
    assert not EVENT_ATTR.search(html), "inline event handler attribute"
    for attrs in SCRIPT_TAG.findall(html):
        assert "src=" in attrs, "inline <script>"


def build_app(with_middleware: bool = True, locale_dirs: tuple[Path, ...] = ()) -> FastAPI:
    templates = make_templates(TEST_TEMPLATES, locale_dirs=locale_dirs)
    app = FastAPI()
    if with_middleware:
        app.add_middleware(LocaleMiddleware)
    mount_static(app)
    install_error_pages(app, templates)
    app.state.templates = templates
    app.state.nav = [("Help", "/help"), ("Danh sách đơn vị", "/console")]
    app.state.signout_url = "/signout"
    app.state.help_url = "/help"

    def sign_in(request: Request) -> None:
        request.state.user = SimpleNamespace(name="Nguyễn Thị Lan", role="district_focal")
        request.state.csrf_token = "csrf-123"

    @app.get("/console")
    async def console(request: Request, page: int = 3):
        sign_in(request)
        return templates.render(
            request,
            "demo_console.html",
            {
                "page_title": "Danh sách đơn vị",
                "messages": [("success", "Đã lưu đơn vị."), ("error", "Thiếu số điện thoại <b>."), ("odd", "x")],
                "page": page,
                "pages": 12,
            },
        )

    @app.get("/plain-console")
    async def plain_console(request: Request):
        sign_in(request)
        return templates.render(request, "console.html", {"page_title": "Trang trống"})

    @app.get("/public")
    async def public(request: Request):
        sign_in(request)  # a visitor page never shows the user bar or the menu
        return templates.render(request, "demo_public.html")

    @app.get("/macros")
    async def macros(request: Request):
        return templates.render(request, "demo_console.html", {"page": 1, "pages": 1})

    @app.get("/error")
    async def error(request: Request):
        return templates.render_error(request, 403)

    @app.get("/missing")
    async def missing():
        raise HTTPException(status_code=404, detail="secret internal detail")

    @app.get("/crash")
    async def crash():
        raise RuntimeError("database password is hunter2")

    return app


def client_for(app: FastAPI, **kwargs) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", **kwargs)


@pytest.fixture
def app() -> FastAPI:
    return build_app()


@pytest.fixture
async def client(app: FastAPI):
    async with client_for(app, headers={"accept": "text/html"}) as c:
        yield c


@pytest.fixture
def landing_app() -> FastAPI:
    return create_landing_app([*CONSOLE_LINKS, PUBLIC_LINK], DEMO_ACCOUNTS)
