"""Production rehearsal: docker-compose.yml's topology boots and serves the whole city flow.

The five services start in production mode with the command and environment compose gives
them (tests/deploy/rehearsal.py maps host names and secrets to what runs here), with the key
material of ``khaibao keys init``, a PostgreSQL prepared by ``deploy/postgres/init``, Kafka,
an SMTP relay (aiosmtpd), Debian's nginx with ``deploy/nginx/nginx.conf`` in front and
Debian's Prometheus with ``deploy/prometheus/prometheus.yml``. The city flow then runs
through nginx only, as people would: a unit registers; the district accepts it and forwards
the list; the city issues the accounts and the credentials are mailed; the unit administrator
signs in, must change the password, finds the venue and prints its poster; a visitor declares
with symptoms; the district health officer sees the alert, runs an exposure query, and the
city's dashboard counts it all. Prometheus scrapes all five, its rules load, and every panel
of the Grafana dashboard returns data.
"""
from __future__ import annotations

import asyncio
import html
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from libs.common.auth import SESSION_COOKIE
from tests.engines import engines_required, kafka_bootstrap
from tests.infra.postgres_local import LocalPostgres, find_pg_bin

from .processes import MailRelay, base_environment, run_khaibao
from .rehearsal import Rehearsal, dump
from .support import DEPLOY, ROOT, SERVICES, _dashboard_queries, _load_yaml

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.kafka]

CITY_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
COMMUNE = "27664"          # Thị trấn Cần Thạnh, Huyện Cần Giờ
DISTRICT = "79/787"
WAIT = 90.0
RESULTS = ROOT / "test-results" / "rehearsal"  # the processes' logs, kept after the run


def _missing(what: str) -> None:
    message = f"production rehearsal: {what}"
    if engines_required():
        pytest.fail(f"{message} (KHAIBAO_REQUIRE_ENGINES=1)")
    pytest.skip(message)


def eventually(check: Callable[[], object], what: str | Callable[[], str], timeout: float = WAIT,
               system: Rehearsal | None = None):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            what = what() if callable(what) else what
            raise AssertionError(f"{what}: not within {timeout:.0f} s" + (f"\n{system.logs()}" if system else ""))
        time.sleep(0.3)


@pytest.fixture(scope="module")
def rehearsal() -> Iterator[Rehearsal]:
    for tool in ("nginx", "prometheus"):
        if shutil.which(tool) is None and not (shutil.which(f"/usr/sbin/{tool}") or shutil.which(f"/usr/bin/{tool}")):
            _missing(f"{tool} is not installed (Debian: apt-get install {tool})")
    if find_pg_bin() is None:
        _missing("no PostgreSQL binaries (Debian: apt-get install postgresql)")
    bootstrap = kafka_bootstrap()
    if bootstrap is None:
        _missing("no Kafka (KHAIBAO_TEST_KAFKA_BOOTSTRAP; bash .ci/run starts one)")

    # Under /tmp and world-traversable: the postgres OS user must reach its data directory.
    work = Path(tempfile.mkdtemp(prefix="khaibao-rehearsal-"))
    work.chmod(0o755)
    secrets = work / "secrets"
    # Step 1 of deploy/README.md: the key material, as the operator makes it.
    made = run_khaibao(["keys", "init", str(secrets)], base_environment(), work)
    assert made.returncode == 0, f"khaibao keys init failed:\n{made.stdout}\n{made.stderr}"

    postgres = LocalPostgres(work / "postgres")
    mail = MailRelay()
    system: Rehearsal | None = None
    try:
        postgres.start()
        mail.start()
        system = Rehearsal(work=work, secrets_dir=secrets, kafka_bootstrap=bootstrap, postgres_port=postgres.port,
                           mail=mail, namespace=f"r{uuid.uuid4().hex[:8]}.")
        asyncio.run(system.prepare_postgres(postgres.url))
        # Each service checks its configuration before it serves; the operator's command too.
        for name in SERVICES:
            checked = run_khaibao(["check-config", name], system.service_env(name), work)
            assert checked.returncode == 0, f"check-config {name}:\n{checked.stdout}\n{checked.stderr}"
        started = time.monotonic()
        system.start_services()
        asyncio.run(system.wait_healthy(list(SERVICES)))
        system.start_time = time.monotonic() - started
        system.start(system.nginx_program())
        system.start(system.prometheus_program())
        _wait_listening(system)
        yield system
    finally:
        if system is not None:
            system.stop()
        mail.stop()
        postgres.stop()
        shutil.copytree(work / "logs", RESULTS, dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)


def _wait_listening(system: Rehearsal) -> None:
    def answers() -> bool:
        try:
            return (httpx.get(system.public_url(8080) + "/healthz", timeout=2).status_code == 200
                    and httpx.get(system.prometheus_url + "/-/ready", timeout=2).status_code == 200)
        except httpx.HTTPError:
            return False

    eventually(answers, "nginx and Prometheus answering", timeout=30, system=system)


# --- people -----------------------------------------------------------------------------------

class Official:
    """Someone signed in through the proxy: the session cookie and an API token."""

    def __init__(self, system: Rehearsal, client: httpx.Client, username: str, password: str) -> None:
        self.system, self.client, self.username = system, client, username
        self.provisioning = system.public_url(8102)
        self.password = self._first_sign_in(password)
        token = client.post(f"{self.provisioning}/api/token", json={"username": username, "password": self.password})
        assert token.status_code == 200 and token.json()["must_change_password"] is False, token.text
        self.bearer = {"authorization": f"Bearer {token.json()['access_token']}"}

    def _first_sign_in(self, password: str) -> str:
        base = self.provisioning
        signin = self.client.post(f"{base}/signin", data={"username": self.username, "password": password, "next": "/"},
                                  headers={"origin": base})
        assert signin.status_code == 303 and signin.headers["location"] == "/password", signin.text[:2000]
        self.cookie = _session_cookie(signin)
        page = self.client.get(f"{base}/password", headers=self.cookie_header)
        assert page.status_code == 200, page.text[:2000]
        new = f"Khaibao-{uuid.uuid4().hex[:12]}!"
        changed = self.client.post(f"{base}/password", headers={**self.cookie_header, "origin": base},
                                   data={"csrf_token": _csrf(page), "current": password, "new": new, "confirm": new})
        assert changed.status_code == 303, changed.text[:2000]
        self.cookie = _session_cookie(changed)
        return new

    @property
    def cookie_header(self) -> dict[str, str]:
        return {"cookie": f"{SESSION_COOKIE}={self.cookie}"}


def _csrf(page: httpx.Response) -> str:
    """The form token of a console page (every page's header carries one)."""
    return html.unescape(re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1))


def _session_cookie(response: httpx.Response) -> str:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name.strip() == SESSION_COOKIE:
            assert "secure" in header.lower(), "the session cookie must be Secure in production"
            return rest.split(";", 1)[0]
    raise AssertionError(f"no session cookie in {response.headers}")


def create_official(system: Rehearsal, username: str, name: str, role: str, jurisdiction: str) -> str:
    """``docker compose run --rm provisioning khaibao accounts create ...``: the one-time password."""
    made = run_khaibao(["accounts", "create", "--username", username, "--name", name, "--role", role,
                        "--jurisdiction", jurisdiction], system.service_env("provisioning"), system.work)
    assert made.returncode == 0, f"accounts create {username}:\n{made.stdout}\n{made.stderr}"
    password = made.stdout.strip()
    assert password and "\n" not in password
    return password


def official(system: Rehearsal, client: httpx.Client, username: str, name: str, role: str,
             jurisdiction: str) -> Official:
    return Official(system, client, username, create_official(system, username, name, role, jurisdiction))


def _local(moment: datetime) -> str:
    return moment.astimezone(CITY_TZ).strftime("%Y-%m-%dT%H:%M")


# --- the flow -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def flow(rehearsal: Rehearsal) -> dict:
    """The whole city flow through nginx; what it saw, for the checks below."""
    system = rehearsal
    intake, provisioning = system.public_url(8101), system.public_url(8102)
    declaration, notification, reporting = system.public_url(8103), system.public_url(8104), system.public_url(8105)
    seen: dict = {"started": time.monotonic()}
    with httpx.Client(timeout=30, follow_redirects=False) as client:
        # The city's first accounts, made by the operator.
        city = official(system, client, "so.tttt", "Sở Thông tin và Truyền thông", "city_dic", "79")
        district = official(system, client, "vhtt.cangio", "Phòng Văn hóa và Thông tin huyện Cần Giờ",
                            "district_focal", DISTRICT)
        health = official(system, client, "ttyt.cangio", "Trung tâm Y tế huyện Cần Giờ", "health_officer", DISTRICT)

        # A unit registers on the public form's API.
        email = f"vanthu.{uuid.uuid4().hex[:6]}@example.vn"
        registered = client.post(f"{intake}/api/registrations", json={
            "unit_name": "Phòng Tài nguyên và Môi trường huyện Cần Giờ", "unit_type": "state_agency",
            "address": "12 Đường Lương Văn Nho", "commune_code": COMMUNE, "contact_name": "Nguyễn Thị Thu Hà",
            "contact_position": "Chánh văn phòng", "contact_phone": "0909 123 456", "contact_email": email,
            "venue_count": 1})
        assert registered.status_code == 201, registered.text
        assert registered.json()["receiver"] == "district"
        registration_id = registered.json()["id"]

        # The district reviews it and forwards its list to the city.
        accepted = client.post(f"{intake}/api/registrations/{registration_id}/accept", headers=district.bearer)
        assert accepted.status_code == 200, accepted.text
        forwarded = client.post(f"{intake}/api/batches", headers=district.bearer, json={})
        assert forwarded.status_code == 201, forwarded.text

        # The city issues the batch.
        def batch_arrived():
            listed = client.get(f"{provisioning}/api/batches", headers=city.bearer)
            assert listed.status_code == 200, listed.text
            return [b for b in listed.json() if b["pending"]]

        [batch] = eventually(batch_arrived, "the forwarded batch in provisioning", system=system)
        job = client.post(f"{provisioning}/api/batches/{batch['id']}/issue", headers=city.bearer)
        assert job.status_code == 202, job.text

        def issued():
            state = client.get(f"{provisioning}/api/jobs/{job.json()['id']}", headers=city.bearer).json()
            return state if state["status"] == "done" else None

        state = eventually(issued, "the issuing job", system=system)
        assert (state["done"], state["failed"]) == (1, 0), state

        # The credentials reach the unit by e-mail (the relay), sealed on the way.
        def mailed():
            return [m for m in system.mail.messages if email in str(m["To"])]

        [message] = eventually(mailed, "the credentials e-mail at the relay", system=system)
        text = message.get_body(preferencelist=("plain",)).get_content()
        username = re.search(r"Tên đăng nhập: (\S+)", text).group(1)
        password = re.search(r"Mật khẩu:\s+(\S+)", text).group(1)
        assert provisioning in text, "the e-mail links to the public address of the sign-in page"
        unit = Official(system, client, username, password)

        # The unit's venue, and its poster.
        venues = client.get(f"{provisioning}/api/venues", headers=unit.bearer)
        assert venues.status_code == 200 and len(venues.json()) == 1, venues.text
        venue = venues.json()[0]
        poster = client.get(f"{provisioning}/venues/{venue['id']}/poster.pdf", headers=unit.cookie_header)
        assert poster.status_code == 200, poster.text[:1000]
        assert poster.headers["content-type"] == "application/pdf" and poster.content.startswith(b"%PDF")

        # A visitor scans it and declares, with fever and cough.
        eventually(lambda: client.get(f"{declaration}/api/venues/{venue['code']}").status_code == 200,
                   "the venue known to the declaration service", system=system)
        declared_at = datetime.now(UTC)
        answer = client.post(f"{declaration}/api/declarations", json={
            "venue_code": venue["code"], "consent": True, "idempotency_key": uuid.uuid4().hex,
            "people": [{"full_name": "Trần Văn Bình", "id_type": "cccd", "id_number": "079088001234",
                        "birth": "12/05/1988", "gender": "male", "phone": "0912345678", "province_code": "79",
                        "district_code": "787", "commune_code": COMMUNE, "street": "5 Đường Rừng Sác",
                        "symptoms": ["fever", "cough"], "exposures": []}]})
        assert answer.status_code == 201, answer.text
        [person] = answer.json()["declarations"]
        assert person["result"] == "red", person
        seen["declared"] = time.monotonic()

        # The district health center's inbox shows the alert.
        def alerted():
            alerts = client.get(f"{notification}/api/alerts", headers=health.bearer)
            assert alerts.status_code == 200, alerts.text
            return [a for a in alerts.json() if a["venue_code"] == venue["code"]]

        [alert] = eventually(alerted, "the alert in the health officer's inbox", system=system)
        seen["alert_after"] = time.monotonic() - seen["declared"]
        assert alert["district_path"] == DISTRICT

        # ... and acknowledges it on its console page.
        page = client.get(f"{notification}/alerts/{alert['id']}", headers=health.cookie_header)
        assert page.status_code == 200 and "Trần Văn Bình" in page.text, page.text[:2000]
        acknowledged = client.post(f"{notification}/alerts/{alert['id']}/ack", data={"csrf_token": _csrf(page)},
                                   headers={**health.cookie_header, "origin": notification})
        assert acknowledged.status_code == 303, acknowledged.text[:2000]

        def acknowledged_in_inbox():
            alerts = client.get(f"{notification}/api/alerts", headers=health.bearer).json()
            return [a for a in alerts if a["id"] == alert["id"] and a["status"] == "acknowledged"]

        eventually(acknowledged_in_inbox, "the acknowledged alert", system=system)

        # The officer asks who else was there.
        def exposure():
            found = client.post(f"{reporting}/api/exposure", headers=health.bearer, json={
                "venue": venue["code"], "case_reference": "CG-2026-0001", "reason": "Ca nghi ngờ tại cơ quan",
                "start": _local(declared_at - timedelta(minutes=30)), "end": _local(declared_at + timedelta(minutes=30))})
            assert found.status_code == 200, found.text
            return found.json() if found.json()["total"] >= 1 else None

        contacts = eventually(exposure, "the declaration in the exposure query", system=system)
        assert [c["full_name"] for c in contacts["contacts"]] == ["Trần Văn Bình"]

        # The city's dashboard counts the registration, the declaration and the alert.
        last: dict = {}

        def counted():
            board = client.get(f"{reporting}/api/dashboard", headers=city.bearer)
            assert board.status_code == 200, board.text
            last.update(board.json()["totals"])
            return board.json() if last["declarations"] >= 1 and last["acknowledged"] >= 1 else None

        board = eventually(counted, lambda: f"the city's dashboard counts ({last})", system=system)
        assert board["totals"]["by_result"].get("red") == 1, dump(board["totals"])
        assert (board["alerts"]["raised"], board["alerts"]["acknowledged"]) == (1, 1), dump(board["alerts"])
        counts = client.get(f"{reporting}/api/registrations/counts", headers=city.bearer).json()
        assert {row["path"]: row["registrations"] for row in counts}.get(DISTRICT) == 1, dump(counts)

        # Prometheus scrapes the services directly; the public entry does not show metrics.
        for port in (8101, 8102, 8103, 8104, 8105):
            assert client.get(f"{system.public_url(port)}/metrics").status_code == 404
    seen["took"] = time.monotonic() - seen["started"]
    return seen


def test_the_city_flow_runs_through_the_production_topology(rehearsal, flow):
    assert flow["alert_after"] < 10, flow
    print(f"\nrehearsal: services healthy {rehearsal.start_time:.1f} s after start; city flow {flow['took']:.1f} s; "
          f"alert {flow['alert_after']:.2f} s after the declaration")
    # Nothing personal, secret or broken in the services' logs.
    logs = rehearsal.log_text()
    assert "Traceback" not in logs, rehearsal.logs()
    for secret in ("db_password", "secret_key"):
        value = rehearsal.secret_file(secret).read_text().strip()
        assert value not in logs, f"the {secret} secret appears in a log"
    assert "079088001234" not in logs and "0912345678" not in logs


# --- monitoring ---------------------------------------------------------------------------------

def _query(system: Rehearsal, expr: str) -> list:
    answer = httpx.get(f"{system.prometheus_url}/api/v1/query", params={"query": expr}, timeout=10)
    assert answer.status_code == 200, (expr, answer.text)
    return answer.json()["data"]["result"]


def test_prometheus_scrapes_all_five_and_loads_the_rules(rehearsal, flow):
    def all_up():
        series = _query(rehearsal, 'up{job="khaibao"}')
        return series if {s["metric"].get("service") for s in series if s["value"][1] == "1"} == set(SERVICES) \
            else None

    up = eventually(all_up, "up == 1 for the five services", timeout=60, system=rehearsal)
    assert len(up) == len(SERVICES), up
    rules = httpx.get(f"{rehearsal.prometheus_url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    written = [group for rule_file in _load_yaml(DEPLOY / "prometheus" / "prometheus.yml")["rule_files"]
               for group in _load_yaml(DEPLOY / "prometheus" / rule_file)["groups"]]
    assert sorted(g["name"] for g in rules) == sorted(g["name"] for g in written)
    loaded = [r for g in rules for r in g["rules"]]
    assert len(loaded) == sum(len(g["rules"]) for g in written)
    broken = [(r["name"], r.get("lastError")) for r in loaded if r.get("health") == "err"]
    assert not broken, broken


GRAFANA_VARIABLES = {"$__rate_interval": "1m", "${__rate_interval}": "1m", "$__interval": "10s",
                     "$__range": "10m", "${service}": ".*", "$service": ".*"}


def _grafana_expr(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def test_every_grafana_panel_returns_data(rehearsal, flow):
    dashboard = _load_yaml(DEPLOY / "grafana" / "dashboards" / "khaibao.json")
    queries = sorted(set(_dashboard_queries(dashboard)))
    assert queries
    # Enough scrapes after the flow for every rate() to have two samples.
    time.sleep(6)
    empty = [q for q in queries if not _query(rehearsal, _grafana_expr(q))]
    assert not empty, "panels without data:\n" + "\n".join(empty)


# --- the proxy's own refusals (last: it spends the test address's registration bucket) -----------

NGINX_TOO_MANY = {"vi": "Bạn đã gửi quá nhiều yêu cầu trong thời gian ngắn, vui lòng thử lại sau giây lát.",
                  "en": "Too many requests in a short time, please try again in a moment."}


def test_the_proxys_429_speaks_the_callers_language(rehearsal, flow):
    """nginx refuses a flood before the service: an RFC 9457 problem in the caller's language
    (Accept-Language for the API; ?lang= or the consoles' cookie for a page), with Retry-After."""
    intake = rehearsal.public_url(SERVICES["intake"])
    with httpx.Client(base_url=intake, timeout=10) as client:
        answers = [client.post("/api/registrations", json={}, headers={"accept-language": "en-GB,en;q=0.9"})
                   for _ in range(45)]
        from_proxy = [a for a in answers if a.status_code == 429 and a.json().get("detail") == NGINX_TOO_MANY["en"]]
        assert from_proxy, [(a.status_code, a.text[:120]) for a in answers[-3:]]
        refused = from_proxy[-1]
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"] == "/problems/rate-limited" and refused.json()["status"] == 429
        assert refused.headers["content-language"] == "en" and int(refused.headers["retry-after"]) >= 1
        assert refused.headers["cache-control"] == "no-store"
        vietnamese = client.post("/api/registrations", json={})
        assert vietnamese.status_code == 429 and vietnamese.json()["detail"] == NGINX_TOO_MANY["vi"]
        assert vietnamese.json()["title"] == "Quá nhiều yêu cầu"
        page = client.post("/api/registrations?lang=en", json={}, headers={"accept-language": "vi"})
        assert page.json()["detail"] == NGINX_TOO_MANY["en"]  # ?lang= first, as the services do
        form = client.post("/d/787/register", data={}, headers={"accept": "text/html"},
                           cookies={"khaibao_lang": "en"})
        assert form.status_code == 429 and '<html lang="en">' in form.text and "Too many requests" in form.text
        form_vi = client.post("/d/787/register", data={}, headers={"accept": "text/html"})
        assert form_vi.status_code == 429 and '<html lang="vi">' in form_vi.text and "Too many" not in form_vi.text
