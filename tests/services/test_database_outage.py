"""A database that cannot be reached is a 503 with Retry-After, never a 500.

While PostgreSQL restarts, requests fail inside the driver; the client was told nothing
was done and when to come back (the faults-under-load suite saw 500s here before).
"""
import socket

from libs.common.auth import Role
from libs.common.db import Database

from .conftest import client_for, create_app


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_unreachable_database_answers_503_json_and_page(make_settings, mint):
    app = create_app("reporting", make_settings("reporting"))
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        healthy = runtime.database
        # The real database goes away: nothing listens where the service now connects.
        runtime.database = Database(f"postgresql+asyncpg://khaibao:x@127.0.0.1:{closed_port()}/khaibao")
        try:
            token = mint.token(Role.CITY_DIC)
            async with client_for(app, "http://reporting.test",
                                  headers={"authorization": f"Bearer {token}"}) as client:
                api = await client.get("/api/registrations/counts", headers={"accept": "application/json"})
                page = await client.get("/", headers={"accept": "text/html"})
        finally:
            await runtime.database.dispose()
            runtime.database = healthy
    assert api.status_code == 503 and api.headers["retry-after"] == "2"
    assert "thử lại" in api.json()["detail"]
    assert page.status_code == 503 and page.headers["retry-after"] == "2"
    assert "Traceback" not in page.text and "127.0.0.1" not in page.text
