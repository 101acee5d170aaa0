"""Rate limits at the services' door (libs/common/ratelimit.py): per client address, per venue.

The declaration service runs as a real ``khaibao serve declaration --workers 2`` process on
127.0.0.1 (SQLite, embedded bus, development mode: limits on by default), so that the
address is the socket's and the limit must hold across the two worker processes. A second
client binds its socket to 127.0.0.2 (loopback: every 127.0.0.0/8 address is ours). The
server trusts 127.0.0.1 as a proxy, so X-Forwarded-For sent from 127.0.0.1 names the
client, and the same header from 127.0.0.2 (not a proxy) is ignored.

The other services' routes are checked in process (the ASGI client's address is set).
Every request here is bounded in count; everything stays on loopback.
"""
from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from libs.common.ratelimit import Limit, SharedBuckets, parse_limit
from tests.infra.postgres_local import free_port
from tests.infra.process import stop_group

from .conftest import build_settings, make_keys, run_services

ROOT = Path(__file__).resolve().parents[2]
VENUES = [f"RATE{i:04d}" for i in range(60)]
CROWDED = "RATECROWD"
VIETNAMESE = "quá nhiều yêu cầu"


def _person(i: int) -> dict:
    return {"full_name": "Nguyễn Văn An", "id_number": f"079{i:09d}", "birth": "01/02/1990", "gender": "male",
            "phone": "0909123456", "province_code": "79", "district_code": "787", "commune_code": "27664",
            "street": "1 Lương Văn Nho", "symptoms": [], "exposures": []}


def _declaration(venue: str, i: int) -> dict:
    return {"venue_code": venue, "people": [_person(i)], "consent": True, "idempotency_key": uuid.uuid4().hex}


async def _seed(data_dir: Path) -> str:
    from bench.declare import MIGRATIONS
    from libs.common import migrate
    from libs.common.db import Database
    from services.declaration.models import Venue

    url = f"sqlite+aiosqlite:///{data_dir / 'declaration.db'}"
    database = Database(url)
    await migrate.upgrade(database, MIGRATIONS, "declaration")
    async with database.transaction() as session:
        for code in [*VENUES, CROWDED]:
            session.add(Venue(venue_id=uuid.uuid4(), code=code, unit_id=uuid.uuid4(), unit_name="Chợ thử",
                              name=f"Cổng {code}", address="1 Lương Văn Nho", commune_path="79/787/27664",
                              active=True, updated_at=time.time()))
    await database.dispose()
    return url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("ratelimit")
    url = await _seed(data_dir)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KHAIBAO_", "FORWARDED_ALLOW_IPS"))}
    env.update({
        "KHAIBAO_ENVIRONMENT": "development", "KHAIBAO_DATA_DIR": str(data_dir),
        "KHAIBAO_BUS_URL": f"embedded://{data_dir / 'bus.db'}", "KHAIBAO_DECLARATION_DATABASE_URL": url,
        "KHAIBAO_TRUSTED_PROXIES": "127.0.0.1", "KHAIBAO_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
        # The venue limit small enough to reach from a few addresses; the address limits are the defaults.
        "KHAIBAO_DECLARATION_RATE_LIMIT_VENUE": "1/s burst 20",
    })
    log = (data_dir / "server.log").open("ab")
    process = subprocess.Popen([sys.executable, "-m", "libs.common.cli", "serve", "declaration", "--port", str(port),
                                "--workers", "2"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, ready = time.monotonic() + 120, 0
        while ready < 6 and time.monotonic() < deadline:
            assert process.poll() is None, (data_dir / "server.log").read_text()[-3000:]
            try:
                ready += httpx.get(f"{base}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
        assert ready >= 6, (data_dir / "server.log").read_text()[-3000:]
        await asyncio.sleep(1.0)  # both workers past their start
        yield {"base": base, "db": data_dir / "declaration.db"}
    finally:
        stop_group(process)
        log.close()


def _client(base: str, local: str = "127.0.0.1") -> httpx.AsyncClient:
    # No keep-alive: each request on a new connection, so the two workers share the requests.
    transport = httpx.AsyncHTTPTransport(local_address=local, limits=httpx.Limits(max_keepalive_connections=0))
    return httpx.AsyncClient(transport=transport, base_url=base, timeout=30)


def _stored(db: Path, keys: list[str]) -> int:
    with sqlite3.connect(db) as connection:
        marks = ",".join("?" * len(keys))
        return connection.execute(f"SELECT count(*) FROM submissions WHERE key IN ({marks})", keys).fetchone()[0]


async def _flood(client: httpx.AsyncClient, count: int, headers=None, venues=VENUES, concurrency: int = 16):  # noqa: ANN001
    bodies = [_declaration(venues[i % len(venues)], i) for i in range(count)]
    answers: list[httpx.Response | None] = [None] * count
    queue = iter(range(count))

    async def worker() -> None:
        for i in queue:
            answers[i] = await client.post("/api/declarations", json=bodies[i], headers=headers or {})

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return bodies, answers, time.monotonic() - started


@pytest.mark.asyncio(loop_scope="module")
async def test_a_flood_from_one_address_is_refused_and_nothing_refused_is_stored(server):
    async with _client(server["base"]) as client:
        bodies, answers, seconds = await _flood(client, 200)
    statuses = [a.status_code for a in answers]
    accepted = [b for b, a in zip(bodies, answers) if a.status_code == 201]
    refused = [(b, a) for b, a in zip(bodies, answers) if a.status_code == 429]
    assert set(statuses) <= {201, 429}, statuses
    # One bucket for both workers: the burst (60) and 5/s for the time the flood took.
    assert 60 <= len(accepted) <= 60 + 5 * seconds + 3, (len(accepted), seconds)
    assert refused
    answer = refused[0][1]
    assert int(answer.headers["retry-after"]) >= 1
    assert VIETNAMESE in answer.json()["detail"].lower() and answer.json()["type"] == "/problems/rate-limited"
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.headers["cache-control"] == "no-store" and answer.headers.get("x-trace-id")
    assert _stored(server["db"], [b["idempotency_key"] for b, _ in refused]) == 0
    assert _stored(server["db"], [b["idempotency_key"] for b in accepted]) == len(accepted)

    # A second address is not affected.
    async with _client(server["base"], "127.0.0.2") as other:
        _, answers, _ = await _flood(other, 20)
    assert [a.status_code for a in answers] == [201] * 20

    # The public HTML form of the same address is in the same bucket: a Vietnamese page, 429.
    async with _client(server["base"]) as client:
        for i in range(80):  # the bucket refilled meanwhile: empty it again
            if (await client.post("/api/declarations", json=_declaration(VENUES[0], 500 + i))).status_code == 429:
                break
        # (the refusal was held a second, a few tokens came back: send more than those at once)
        pages = await asyncio.gather(*(client.post(f"/v/{VENUES[0]}", data={"action": "submit"},
                                                   headers={"accept": "text/html"}) for _ in range(12)))
    page = next(p for p in pages if p.status_code == 429)
    assert int(page.headers["retry-after"]) >= 1
    assert page.headers["content-type"].startswith("text/html") and "Quá nhiều yêu cầu" in page.text


@pytest.mark.asyncio(loop_scope="module")
async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(server):
    # From 127.0.0.2 (not a trusted proxy) a new X-Forwarded-For on every request changes nothing.
    async with _client(server["base"], "127.0.0.2") as client:
        bodies = [_declaration(VENUES[i % len(VENUES)], 10_000 + i) for i in range(120)]
        statuses = []
        for i, body in enumerate(bodies):
            answer = await client.post("/api/declarations", json=body, headers={"x-forwarded-for": f"10.7.{i}.1"})
            statuses.append(answer.status_code)
    assert 429 in statuses
    # Through the trusted proxy (127.0.0.1), each forwarded client has its own bucket, even
    # though 127.0.0.1 itself was refused just before (the first test).
    async with _client(server["base"]) as client:
        for i in range(5):
            answer = await client.post("/api/declarations", json=_declaration(VENUES[i], 20_000 + i),
                                       headers={"x-forwarded-for": f"203.0.113.{i + 1}"})
            assert answer.status_code == 201, answer.text
        # ... and one forwarded client is limited like any other.
        _, answers, _ = await _flood(client, 90, headers={"x-forwarded-for": "198.51.100.7"})
    assert 429 in [a.status_code for a in answers]


@pytest.mark.asyncio(loop_scope="module")
async def test_a_venue_takes_a_bounded_number_of_declarations_whatever_the_addresses(server):
    keys, statuses = [], []
    async with _client(server["base"]) as client:
        for i in range(40):  # 40 forwarded clients, one declaration each, one venue
            body = _declaration(CROWDED, 30_000 + i)
            answer = await client.post("/api/declarations", json=body, headers={"x-forwarded-for": f"192.0.2.{i + 1}"})
            statuses.append(answer.status_code)
            keys.append((body["idempotency_key"], answer))
    assert statuses.count(201) <= 20 + 3 and 429 in statuses, statuses
    refused = next(a for _, a in keys if a.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["errors"][0]["type"] == "too_fast"
    assert "Địa điểm này đang nhận quá nhiều khai báo" in refused.json()["errors"][0]["message"]
    assert _stored(server["db"], [k for k, a in keys if a.status_code == 429]) == 0


@pytest.mark.asyncio(loop_scope="module")
async def test_probes_are_never_limited(server):
    async with _client(server["base"], "127.0.0.2") as client:
        for _ in range(3):
            assert (await client.get("/healthz")).status_code == 200


# --- the shared table ---------------------------------------------------------------------------

def _take_many(path: str, count: int, out) -> None:  # noqa: ANN001
    buckets = SharedBuckets(Path(path))
    limit = Limit(0.001, 60)
    out.put(sum(1 for _ in range(count) if buckets.take(b"declare\0203.0.113.9", limit) == 0.0))


def test_two_processes_share_one_bucket(tmp_path):
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    workers = [context.Process(target=_take_many, args=(str(tmp_path / "t.bin"), 100, out)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert out.get(timeout=5) + out.get(timeout=5) == 60


def test_a_bucket_refills_at_its_rate_and_says_how_long_to_wait():
    buckets, limit = SharedBuckets(None), Limit(2.0, 4)
    assert [buckets.take(b"k", limit, now=100.0) for _ in range(4)] == [0.0] * 4
    wait = buckets.take(b"k", limit, now=100.0)
    assert wait == pytest.approx(0.5)
    assert buckets.take(b"k", limit, now=100.5) == 0.0
    assert buckets.take(b"other", limit, now=100.5) == 0.0
    assert buckets.take(b"k", limit, cost=5, now=200.0) > 0  # more than the burst: never


def test_limits_are_written_as_rate_and_burst():
    assert parse_limit("5/s burst 60") == Limit(5.0, 60)
    assert parse_limit("0.5/s burst 20") == Limit(0.5, 20)
    assert parse_limit("off") is None
    with pytest.raises(ValueError):
        parse_limit("60 per minute")


def test_trusted_proxies_are_addresses_and_nobody_by_default():
    from libs.common.cli import trusted_proxies
    from services.declaration.settings import DeclarationSettings

    assert trusted_proxies("declaration", {}) == ""  # not uvicorn's default (127.0.0.1)
    assert trusted_proxies("declaration", {"FORWARDED_ALLOW_IPS": "*"}) == "*"
    assert trusted_proxies("declaration", {"KHAIBAO_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1",
                                           "FORWARDED_ALLOW_IPS": "*"}) == "10.0.0.0/8,127.0.0.1"
    assert DeclarationSettings(trusted_proxies="10.0.0.0/8, ::1").trusted_proxies == "10.0.0.0/8,::1"
    with pytest.raises(ValueError):
        DeclarationSettings(trusted_proxies="nginx")


# --- the other services, in process ---------------------------------------------------------------

def _asgi(app, address: str) -> httpx.AsyncClient:  # noqa: ANN001
    transport = httpx.ASGITransport(app=app, client=(address, 40000), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://svc.test")


@pytest.mark.asyncio
async def test_sign_in_registration_and_pages_are_limited_per_address(tmp_path):
    keys = make_keys(tmp_path / "data")
    limits = {"rate_limit_enabled": True, "rate_limit_signin": "0.01/s burst 3",
              "rate_limit_submit": "0.01/s burst 3", "rate_limit_general": "0.01/s burst 5"}
    settings = {s: build_settings(s, keys, **limits) for s in ("intake", "provisioning")}
    async with run_services(settings) as running:
        provisioning, intake = running.apps["provisioning"], running.apps["intake"]
        async with _asgi(provisioning, "198.51.100.1") as client, _asgi(provisioning, "198.51.100.2") as other:
            tokens = [await client.post("/api/token", json={"username": "x", "password": "y"}) for _ in range(4)]
            assert [t.status_code for t in tokens[:3]] == [401] * 3 and tokens[3].status_code == 429
            assert int(tokens[3].headers["retry-after"]) >= 1 and VIETNAMESE in tokens[3].json()["detail"].lower()
            assert (await other.post("/api/token", json={"username": "x", "password": "y"})).status_code == 401
            signin = await client.post("/signin", data={"username": "x", "password": "y"},
                                       headers={"accept": "text/html"})
            assert signin.status_code == 429 and "Quá nhiều yêu cầu" in signin.text
            for _ in range(5):
                assert (await client.get("/healthz")).status_code == 200
        async with _asgi(intake, "198.51.100.1") as client:
            posts = [await client.post("/api/registrations", json={}) for _ in range(4)]
            assert [p.status_code for p in posts] == [422, 422, 422, 429]
            pages = [await client.get("/status", headers={"accept": "text/html"}) for _ in range(6)]
            assert [p.status_code for p in pages[:5]] == [200] * 5 and pages[5].status_code == 429
            assert "Quá nhiều yêu cầu" in pages[5].text and pages[5].headers["retry-after"]
