"""Webhook addresses into internal networks are refused (server-side request forgery):
when an office sets one (the Vietnamese message on /alerts/settings) and again when an
alert is delivered (not called, failed at once with the reason, no retries). With
``webhook_allow_private`` the call is pinned to the resolved address and keeps the name."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from libs.common.auth import Role
from services.notification.alert_models import AlertContact, AlertDispatch
from tests.services.conftest import DEMO_COMMUNE, DEMO_DISTRICT, eventually

from .support import flagged, payload, signed_by
from .test_delivery import set_contacts

INTERNAL = [
    "https://127.0.0.1/alerts",                     # loopback
    "https://127.8.9.10:8443/alerts",
    "https://localhost:8443/alerts",                # a name that resolves to loopback
    "https://2130706433/alerts",                    # 127.0.0.1 written as one number
    "https://0x7f.1/alerts",                        # ... and in hexadecimal
    "https://10.1.2.3/alerts",                      # private
    "https://172.16.0.1/alerts",
    "https://192.168.1.10/alerts",
    "https://169.254.169.254/latest/meta-data",     # link-local (cloud metadata)
    "https://100.64.0.1/alerts",                    # shared address space (carrier-grade NAT)
    "https://0.0.0.0/alerts",                       # unspecified
    "https://224.0.0.1/alerts",                     # multicast
    "https://240.0.0.1/alerts",                     # reserved
    "https://255.255.255.255/alerts",               # broadcast
    "https://192.0.2.10/alerts",                    # documentation
    "https://[::1]/alerts",                         # IPv6 loopback
    "https://[::]/alerts",                          # IPv6 unspecified
    "https://[fe80::1]/alerts",                     # IPv6 link-local
    "https://[fc00::1]/alerts",                     # IPv6 unique local (private)
    "https://[fec0::1]/alerts",                     # IPv6 site-local
    "https://[ff02::1]/alerts",                     # IPv6 multicast
    "https://[::ffff:10.0.0.1]/alerts",             # IPv4-mapped private
    "https://[64:ff9b::a00:1]/alerts",              # NAT64 of 10.0.0.1
    "https://[2002:a00:1::1]/alerts",               # 6to4 of 10.0.0.1
    "https://[2001:db8::1]/alerts",                 # IPv6 documentation
]
PRIVATE_VI = "Địa chỉ webhook trỏ vào mạng nội bộ"


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
async def test_internal_addresses_are_refused_when_set(alerts_factory):
    async with alerts_factory() as a:
        officer = a.html(Role.HEALTH_OFFICER, DEMO_DISTRICT)
        for url in INTERNAL:
            response = await a.client.post("/alerts/settings", headers=officer, data={"webhook_url": url})
            assert response.status_code == 422, url
            assert PRIVATE_VI in response.text, url
        http = await a.client.post("/alerts/settings", headers=officer, data={"webhook_url": "http://8.8.8.8/alerts"})
        assert http.status_code == 422 and "phải bắt đầu bằng https://" in http.text
        async with a.runtime.database.transaction(readonly=True) as session:
            assert await session.get(AlertContact, DEMO_DISTRICT) is None  # nothing saved
        # Public addresses (IPv4 and IPv6) are accepted.
        for url in ("https://8.8.8.8/alerts", "https://[2001:4860:4860::8888]:8443/alerts"):
            await set_contacts(a, Role.HEALTH_OFFICER, DEMO_DISTRICT, webhook_url=url)
            page = await a.client.get("/alerts/settings", headers=officer)
            assert f'value="{url}"' in page.text
            assert "Chỉ chấp nhận địa chỉ https:// công khai" in page.text  # the field's help
        english = await a.client.post("/alerts/settings?lang=en", headers=officer,
                                      data={"webhook_url": "https://10.0.0.1/"})
        assert "leads into an internal network" in english.text


async def test_a_delivery_to_an_internal_address_is_not_attempted(alerts_factory, hook):
    async with alerts_factory() as a:
        # Set while the setting allowed it (or before this check existed): now refused.
        async with a.runtime.database.transaction() as session:
            session.add(AlertContact(office_path=DEMO_COMMUNE, emails="", webhook_url=hook.url.replace("http:", "https:"),
                                     webhook_secret="s" * 43, updated_at=datetime.now(UTC), updated_by_name="test"))
        alert = await a.arrives(flagged(DEMO_COMMUNE))

        async def failed():
            async with a.runtime.database.transaction(readonly=True) as session:
                rows = list((await session.execute(select(AlertDispatch))).scalars())
            return rows if rows and all(r.status == "failed" for r in rows) else None

        rows = await eventually(failed, what="the webhook dispatch failed")
        assert len(rows) == 1 and rows[0].attempts == 1
        assert rows[0].last_error == "webhook_private (127.0.0.1)"
        await asyncio.sleep(0.8)  # several retry periods: no retry
        async with a.runtime.database.transaction(readonly=True) as session:
            again = await session.get(AlertDispatch, rows[0].id)
        assert again.attempts == 1 and again.status == "failed"
        assert hook.received == []
        page = await a.client.get(f"/alerts/{alert['id']}", headers=a.html(Role.HEALTH_OFFICER, DEMO_DISTRICT))
        assert "Không gửi" in page.text and PRIVATE_VI in page.text and "127.0.0.1" in page.text
        # The commune's settings page says why its saved webhook is not called.
        settings = await a.client.get("/alerts/settings", headers=a.html(Role.COMMUNE_FOCAL, DEMO_COMMUNE))
        assert settings.status_code == 200 and PRIVATE_VI in settings.text and "(127.0.0.1)" in settings.text


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
async def test_the_call_is_pinned_to_the_checked_address_and_keeps_the_name(alerts_factory, hook):
    async with alerts_factory(webhook_allow_private=True) as a:
        port = hook.server.server_address[1]
        url = f"http://localhost:{port}/alerts"  # localhost may resolve to ::1 first: the next address is tried
        await set_contacts(a, Role.COMMUNE_FOCAL, DEMO_COMMUNE, webhook_url=url)
        page = await a.client.get("/alerts/settings", headers=a.html(Role.COMMUNE_FOCAL, DEMO_COMMUNE))
        secret = page.text.split('id="webhook-secret">', 1)[1].split("<", 1)[0]
        await a.arrives(flagged(DEMO_COMMUNE))
        received = (await eventually(lambda: _now(hook.received), what="the webhook call"))[0]
        assert received["headers"]["host"] == f"localhost:{port}"
        assert signed_by(secret, received) and payload(received)["type"] == "alert.raised"


async def _now(value):  # noqa: ANN001, ANN202
    return value


def _self_signed(directory) -> tuple[str, str]:  # noqa: ANN001
    """A certificate for the name ``localhost`` only (not for 127.0.0.1), and its key."""
    from datetime import timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
async def test_https_call_to_the_checked_address_verifies_the_name(alerts_factory, tmp_path, monkeypatch):
    """The call goes to the resolved address, yet TLS sends the name (SNI) and checks the
    certificate against it: a certificate for ``localhost`` is accepted at 127.0.0.1."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    cert_file, key_file = _self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", cert_file)  # httpx trusts it as the only authority
    seen: dict[str, list] = {"sni": [], "host": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's hook
            self.rfile.read(int(self.headers.get("content-length", "0")))
            seen["host"].append(self.headers.get("host"))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:  # noqa: ANN002
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    context.sni_callback = lambda sock, name, ctx: seen["sni"].append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        async with alerts_factory(webhook_allow_private=True) as a:
            await set_contacts(a, Role.COMMUNE_FOCAL, DEMO_COMMUNE, webhook_url=f"https://localhost:{port}/alerts")
            await a.arrives(flagged(DEMO_COMMUNE))
            await eventually(lambda: _now(seen["host"]), what="the https webhook call")
            assert seen["host"][0] == f"localhost:{port}" and "localhost" in seen["sni"]

            async def sent():
                async with a.runtime.database.transaction(readonly=True) as session:
                    rows = list((await session.execute(select(AlertDispatch))).scalars())
                return [d.status for d in rows] == ["sent"]

            await eventually(sent, what="the dispatch marked sent")
    finally:
        server.shutdown()
        server.server_close()
