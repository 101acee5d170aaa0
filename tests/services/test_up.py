"""``khaibao up`` from the checkout: five service processes and the landing page, then Ctrl-C.

The command runs as a subprocess with a temporary data dir on six consecutive free ports;
the test waits for every /healthz, reads the landing page, signs in with a demo account,
uses the token on another service (one key, five processes), then sends SIGINT and
expects every process to be gone within 20 s and no port left listening.
"""
from __future__ import annotations

import signal
import sys
import time

import httpx
import pytest

from libs.common.demo import DEMO_PASSWORD
from libs.common.settings import SERVICES

from .conftest import REPO_ROOT, alive, children_of, launch_up, port_open, registration

pytestmark = [pytest.mark.slow]


def test_khaibao_up_runs_the_system_and_stops_on_ctrl_c(tmp_path):
    data_dir = tmp_path / "var"
    up = launch_up(data_dir, tmp_path / "up.log")
    children: list[int] = []
    try:
        took = up.wait_ready(timeout=60)
        assert took < 60
        children = children_of(up.process.pid)
        assert len(children) == len(SERVICES), (children, up.log())

        # Each service answers its health check with its own name.
        for service, url in up.urls.items():
            health = httpx.get(f"{url}/healthz", timeout=5)
            assert health.json() == {"status": "ok", "service": service}
        # Ready too: database and bus answer.
        for service, url in up.urls.items():
            deadline = time.monotonic() + 30
            while (ready := httpx.get(f"{url}/readyz", timeout=10)).status_code != 200:
                assert time.monotonic() < deadline, (service, ready.text)
                time.sleep(0.2)

        # The landing page lists the five consoles.
        landing = httpx.get(up.landing_url + "/", timeout=5)
        assert landing.status_code == 200
        assert landing.headers["content-type"].startswith("text/html")
        for url in up.urls.values():
            assert f'href="{url}"' in landing.text, url
        for title in ("Tiếp nhận đăng ký", "Tài khoản và mã QR", "Khai báo y tế", "Thông báo và Kênh hỗ trợ",
                      "Báo cáo và thống kê"):
            assert title in landing.text
        assert "ubnd.canthanh" in landing.text and DEMO_PASSWORD in landing.text

        # A demo sign-in through provisioning; the token works on another process.
        token = httpx.post(f"{up.urls['provisioning']}/api/token",
                           json={"username": "ubnd.canthanh", "password": DEMO_PASSWORD}, timeout=10)
        assert token.status_code == 200, token.text
        bearer = {"authorization": f"Bearer {token.json()['access_token']}"}
        me = httpx.get(f"{up.urls['provisioning']}/api/me", headers=bearer, timeout=5)
        assert me.json()["jurisdiction"] == "79/787/27664"
        created = httpx.post(f"{up.urls['intake']}/api/registrations", json=registration(), timeout=10)
        assert created.status_code == 201, created.text
        # Over real HTTP: a JSON route refuses a "simple" cross-site body (text/plain, the type
        # a page of another site can send without a preflight) and allows no other origin.
        forged = httpx.post(f"{up.urls['declaration']}/api/declarations", content=b'{"venue_code": "X"}',
                            headers={"content-type": "text/plain", "origin": "https://evil.example"}, timeout=10)
        assert forged.status_code == 415 and forged.headers["cache-control"] == "no-store", forged.text
        preflight = httpx.options(f"{up.urls['declaration']}/api/declarations", timeout=10, headers={
            "origin": "https://evil.example", "access-control-request-method": "POST"})
        assert not [h for h in preflight.headers if h.lower().startswith("access-control-allow")]
        listed = httpx.get(f"{up.urls['intake']}/api/registrations", headers=bearer, timeout=5)
        assert listed.status_code == 200
        assert [r["reference"] for r in listed.json()] == [created.json()["reference"]]
        # ... and the event crosses processes over the embedded bus file.
        deadline = time.monotonic() + 30
        while True:
            counts = httpx.get(f"{up.urls['reporting']}/api/registrations/counts", headers=bearer, timeout=5)
            if counts.status_code == 200 and counts.json()[0]["registrations"] == 1:
                break
            assert time.monotonic() < deadline, counts.text
            time.sleep(0.2)

        # The data stay in the data dir given on the command line.
        assert (data_dir / "keys" / "token-public.pem").is_file()
        assert {f"{s}.db" for s in SERVICES} | {"bus.db"} <= {p.name for p in data_dir.iterdir()}

        # Ctrl-C: everything stops within 20 s.
        up.assert_stops_on_ctrl_c(children, timeout=20)
        assert up.process.returncode == 0, up.log()
        assert "stopping" in up.log()
    finally:
        up.kill()
        for pid in children:
            if alive(pid):
                import os

                os.kill(pid, signal.SIGKILL)


def test_khaibao_up_refuses_busy_ports(tmp_path):
    import socket

    from .conftest import free_port_block

    base = free_port_block(len(SERVICES) + 1)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", base + 2))
        blocker.listen()
        import subprocess

        from .conftest import REPO_ROOT, khaibao_command

        result = subprocess.run([*khaibao_command(), "up", "--data-dir", str(tmp_path / "var"), "--base-port", str(base)],
                                cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert str(base + 2) in result.stderr
    assert not any(port_open(p) for p in range(base, base + len(SERVICES) + 1) if p != base + 2)


def test_ctrl_c_while_starting_leaves_nothing_behind(tmp_path):
    up = launch_up(tmp_path / "var", tmp_path / "up.log")
    try:
        # Wait until the service processes exist, then interrupt before they are all healthy.
        deadline = time.monotonic() + 20
        while len(children := children_of(up.process.pid)) < len(SERVICES):
            assert up.process.poll() is None, up.log()
            assert time.monotonic() < deadline, up.log()
            time.sleep(0.05)
        up.assert_stops_on_ctrl_c(children, timeout=20)
    finally:
        up.kill()


def test_the_readme_command_becomes_the_launcher_so_ctrl_c_stops_everything(tmp_path):
    """``python3 dev.py up`` (the README's first command) replaces itself with ``khaibao up``,
    so Ctrl-C reaches the launcher, which stops its services. A wrapper waiting in
    subprocess.call SIGKILLed the launcher on Ctrl-C and left the five services running."""
    up = launch_up(tmp_path / "var", tmp_path / "up.log", command=[sys.executable, str(REPO_ROOT / "dev.py"), "up"])
    try:
        up.wait_ready(timeout=120)
        children = children_of(up.process.pid)
        assert len(children) == len(SERVICES), (children, up.log())
        up.assert_stops_on_ctrl_c(children, timeout=30)
    finally:
        up.kill()


def test_ctrl_c_while_the_demo_week_loads_leaves_nothing_behind(tmp_path):
    """The demo week's loader (`khaibao demo-week`, a child of the launcher) stops with the rest."""
    up = launch_up(tmp_path / "var", tmp_path / "up.log", demo_week=True)
    try:
        deadline = time.monotonic() + 90
        while "[tuần mẫu / demo week]" not in up.log_path.read_text(errors="replace"):
            assert up.process.poll() is None, up.log()
            assert time.monotonic() < deadline, up.log()
            time.sleep(0.1)
        children = children_of(up.process.pid)
        assert len(children) == len(SERVICES) + 1, (children, up.log())  # the services and the loader
        up.assert_stops_on_ctrl_c(children, timeout=30)
        assert not (tmp_path / "var" / "demo-week.done").exists()
    finally:
        up.kill()
