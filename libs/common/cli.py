"""The ``khaibao`` command.

    khaibao up                 all five services + the landing page, embedded mode, demo data,
                               a demo week of declarations and the demo mailbox
    khaibao up --database-url postgresql+asyncpg://u:p@host:5432 --kafka host:9092
    khaibao serve intake --port 8101 --workers 2
    khaibao keys init deploy/secrets            every key and secret of a production deployment
    khaibao keys rotate token deploy/secrets    a new pair; the old public key kept as *.previous.pem
    khaibao check-config provisioning           is this environment fit to run the service?
    khaibao accounts create --username so.tttt --name "..." --role city_dic --jurisdiction 79
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from . import operations
from .lifecycle import CANCELLED_WAIT_SECONDS
from .settings import DEFAULT_PORTS, PLACEHOLDER_SECRETS, SERVICES, ServiceSettings

# Stopping a service: uvicorn lets open requests finish (HTTP_GRACE_SECONDS), then the
# lifespan gives its loops KHAIBAO_SHUTDOWN_GRACE_SECONDS and the ones it had to cancel
# CANCELLED_WAIT_SECONDS.
HTTP_GRACE_SECONDS = 10

SERVICE_DESCRIPTIONS = {  # (title vi, title en, description vi, description en)
    "intake": ("Tiếp nhận đăng ký", "Registration intake",
               "Đơn vị đăng ký; phường/xã, quận/huyện duyệt và chuyển danh sách lên Sở.",
               "Units register; communes and districts review them and forward the lists to the city."),
    "provisioning": ("Tài khoản và mã QR", "Accounts and QR codes",
                     "Đăng nhập, tài khoản đơn vị, địa điểm và mã QR.",
                     "Sign-in, unit accounts, venues and QR codes."),
    "declaration": ("Khai báo y tế", "Health declaration",
                    "Biểu mẫu khai báo công khai và màn hình kiểm soát cổng.",
                    "The public declaration form and the gate check screen."),
    "notification": ("Thông báo và Kênh hỗ trợ", "Notifications and Support Channel",
                     "Hộp thư, cảnh báo ca nghi ngờ, Kênh hỗ trợ giữa quận/huyện và Sở.",
                     "Inbox, suspected-case alerts, the support channel between districts and the city."),
    "reporting": ("Báo cáo và thống kê", "Reports and statistics",
                  "Bảng số liệu theo địa bàn, báo cáo triển khai.",
                  "Figures by area, roll-out reports."),
}


def _serve(args: argparse.Namespace) -> int:
    if args.service not in SERVICES:
        print(f"unknown service {args.service!r}; one of: {', '.join(SERVICES)}", file=sys.stderr)
        return 2
    from .checks import production_requested

    if production_requested(args.service):
        # The same checks as `khaibao check-config`, before uvicorn starts its workers: a
        # production service stops with the list of what to fix, not a traceback.
        report = operations.run_checks(args.service, timeout=args.check_timeout)
        for line in report.warnings:
            print(f"warning: {line}", file=sys.stderr)
        if report.problems:
            for line in report.problems:
                print(line, file=sys.stderr)
            print(f"khaibao serve {args.service}: not started, fix the settings above "
                  f"(khaibao check-config {args.service})", file=sys.stderr)
            return 1
    import uvicorn

    trusted = trusted_proxies(args.service, os.environ)
    uvicorn.run(
        f"services.{args.service}.app:create_app", factory=True, host=args.host,
        port=args.port or DEFAULT_PORTS[args.service], workers=args.workers, log_config=None,
        access_log=False, timeout_graceful_shutdown=HTTP_GRACE_SECONDS,
        proxy_headers=bool(trusted), forwarded_allow_ips=trusted or None,
    )
    return 0


def trusted_proxies(service: str, env: Mapping[str, str]) -> str:
    """The peers whose X-Forwarded-For / -Proto uvicorn believes (comma-separated addresses
    or CIDRs, "*" for any): KHAIBAO_<SERVICE>_TRUSTED_PROXIES, else KHAIBAO_TRUSTED_PROXIES,
    else uvicorn's FORWARDED_ALLOW_IPS; nobody when none is set. (uvicorn's own default
    trusts 127.0.0.1: on a machine shared with `khaibao up`, any local program could then
    choose the address the per-address rate limits count.)"""
    for name in (f"KHAIBAO_{service.upper()}_TRUSTED_PROXIES", "KHAIBAO_TRUSTED_PROXIES", "FORWARDED_ALLOW_IPS"):
        if name in env:
            return ",".join(part.strip() for part in env[name].split(",") if part.strip())
    return ""


async def _create_databases(base_url: str) -> dict[str, str]:
    """One PostgreSQL database per service (created if missing) under the server at base_url."""
    import asyncpg

    from .db import asyncpg_options, parse_url

    url = parse_url(base_url)  # one server, or a primary and its standby (multi-host)
    options = asyncpg_options(url)
    options["database"] = options["database"] or "postgres"
    admin = await asyncpg.connect(**options)
    urls = {}
    try:
        for service in SERVICES:
            name = f"khaibao_{service}"
            if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await admin.execute(f'CREATE DATABASE "{name}"')
            urls[service] = url.set(drivername="postgresql+asyncpg", database=name).render_as_string(
                hide_password=False)
    finally:
        await admin.close()
    return urls


def _wait_healthy(urls: dict[str, str], timeout: float, procs: dict[str, subprocess.Popen]) -> list[str]:
    import httpx

    pending = dict(urls)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for service, url in list(pending.items()):
            if procs[service].poll() is not None:
                raise RuntimeError(f"{service} exited with code {procs[service].returncode}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    del pending[service]
            except httpx.HTTPError:
                pass
        time.sleep(0.3)
    return list(pending)


def _busy_ports(host: str, ports: list[int]) -> list[int]:
    busy = []
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            if probe.connect_ex((host, port)) == 0:
                busy.append(port)
    return busy


def _interrupt(*_) -> None:  # noqa: ANN002
    raise KeyboardInterrupt


def _services_log_format(env: Mapping[str, str], stream: TextIO) -> str:
    """The services' KHAIBAO_LOG_FORMAT under ``khaibao up``: the user's when set; else text
    when our stderr (which the services inherit) is a terminal, json when it is a file or
    a pipe."""
    from .observability import log_format_for

    chosen = (env.get("KHAIBAO_LOG_FORMAT") or "").strip().lower()
    if chosen and chosen != "auto":
        return chosen  # the services refuse a value they do not know
    return log_format_for(None, "development", stream)


def demo_mail_env(env: Mapping[str, str], host: str, port: int,
                  lists_port: int | None = None) -> tuple[dict[str, str], list[str]]:
    """The SMTP settings that send notification's and intake's e-mails to the demo mailbox
    at host:port, and the relays some service keeps because the developer configured one
    (KHAIBAO_NOTIFICATION_SMTP_* / KHAIBAO_SMTP_*, KHAIBAO_INTAKE_SMTP_RELAY_*). With
    ``lists_port``, intake also receives lists by e-mail there (unless
    KHAIBAO_INTAKE_SMTP_PORT is set), so that its replies can be followed in the mailbox."""
    updates: dict[str, str] = {}
    relays: list[str] = []
    if lists_port and not env.get("KHAIBAO_INTAKE_SMTP_PORT"):
        updates.update({"KHAIBAO_INTAKE_SMTP_HOST": host, "KHAIBAO_INTAKE_SMTP_PORT": str(lists_port)})
    own_host = env.get("KHAIBAO_NOTIFICATION_SMTP_HOST") or env.get("KHAIBAO_SMTP_HOST")
    own_port = env.get("KHAIBAO_NOTIFICATION_SMTP_PORT") or env.get("KHAIBAO_SMTP_PORT")
    if own_host or own_port:
        relays.append(f"{own_host or '127.0.0.1'}:{own_port or 25}")
    else:
        updates.update({"KHAIBAO_NOTIFICATION_SMTP_HOST": host, "KHAIBAO_NOTIFICATION_SMTP_PORT": str(port),
                        "KHAIBAO_NOTIFICATION_SMTP_STARTTLS": "false", "KHAIBAO_NOTIFICATION_SMTP_USE_TLS": "false"})
    relay_host = env.get("KHAIBAO_INTAKE_SMTP_RELAY_HOST") or env.get("KHAIBAO_SMTP_RELAY_HOST")
    if relay_host:
        relay_port = env.get("KHAIBAO_INTAKE_SMTP_RELAY_PORT") or env.get("KHAIBAO_SMTP_RELAY_PORT") or "25"
        relays.append(f"{relay_host}:{relay_port}")
    else:
        updates.update({"KHAIBAO_INTAKE_SMTP_RELAY_HOST": host, "KHAIBAO_INTAKE_SMTP_RELAY_PORT": str(port),
                        "KHAIBAO_INTAKE_SMTP_RELAY_STARTTLS": "false", "KHAIBAO_INTAKE_SMTP_RELAY_TLS": "false"})
    return updates, list(dict.fromkeys(relays))


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _retention_days(env: Mapping[str, str]) -> float:
    from .settings import CommonSettings

    try:
        return float(env.get("KHAIBAO_DATA_RETENTION_DAYS") or CommonSettings.model_fields["data_retention_days"].default)
    except ValueError:  # the services refuse it at start-up
        return float(CommonSettings.model_fields["data_retention_days"].default)


def _up(args: argparse.Namespace) -> int:
    from .auth import generate_key_pair
    from .demo import DEMO_ACCOUNTS, DEMO_PASSWORD
    from .keys import local_secret_key
    from .mailbox import MAILBOX_DIR, MailCatcher, MailStore

    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    private, public = data_dir / "keys" / "token-private.pem", data_dir / "keys" / "token-public.pem"
    # A data folder without keys was never started: only then is the demo week loaded.
    fresh = not private.exists()
    if not private.exists():
        generate_key_pair(private, public)
    secret_file = local_secret_key(data_dir)
    host = args.host
    ports = {s: args.base_port + i + 1 for i, s in enumerate(SERVICES)}
    urls = {s: f"http://{host}:{p}" for s, p in ports.items()}
    busy = _busy_ports(host, [args.base_port, *ports.values()])
    if busy:
        print(f"Cổng đang bận / ports already in use: {', '.join(map(str, busy))}. "
              f"Stop the other program or choose --base-port.", file=sys.stderr)
        return 1
    env = dict(os.environ)
    env.update({
        "KHAIBAO_ENVIRONMENT": "development",
        "KHAIBAO_DATA_DIR": str(data_dir),
        "KHAIBAO_DEMO": "false" if args.no_demo else "true",
        "KHAIBAO_SERVICE_URLS": json.dumps(urls),
        "KHAIBAO_PUBLIC_BASE_URL": f"http://{host}:{args.base_port}",
        "KHAIBAO_AUTH_PUBLIC_KEY_FILE": str(public),
        "KHAIBAO_PROVISIONING_AUTH_PRIVATE_KEY_FILE": str(private),
        "KHAIBAO_BUS_URL": f"kafka://{args.kafka}" if args.kafka else f"embedded://{data_dir / 'bus.db'}",
    })
    # The data folder's own secret (cookies, CSRF, result pages), unless the developer named
    # a file or a real secret: never the development value published in the source.
    if not env.get("KHAIBAO_SECRET_KEY_FILE") and (
            env.get("KHAIBAO_SECRET_KEY", "").strip().lower() in PLACEHOLDER_SECRETS):
        env["KHAIBAO_SECRET_KEY_FILE"] = str(secret_file)
    # On a laptop an alert webhook may be a local receiver (http://127.0.0.1:...).
    env.setdefault("KHAIBAO_NOTIFICATION_WEBHOOK_ALLOW_PRIVATE", "true")
    env["KHAIBAO_LOG_FORMAT"] = _services_log_format(env, sys.stderr)
    # The demo mailbox: every e-mail the services send lands in the data folder and on the
    # landing page, unless the developer pointed a service at a real relay.
    mailbox = MailStore(data_dir / MAILBOX_DIR, _retention_days(env))
    catcher = MailCatcher(mailbox, "127.0.0.1").start()
    mail_env, relays = demo_mail_env(env, catcher.host, catcher.port, lists_port=_free_port(catcher.host))
    env.update(mail_env)
    if args.database_url:
        for service, url in asyncio.run(_create_databases(args.database_url)).items():
            env[f"KHAIBAO_{service.upper()}_DATABASE_URL"] = url
    procs: dict[str, subprocess.Popen] = {}
    for service in SERVICES:
        procs[service] = subprocess.Popen(
            [sys.executable, "-m", "libs.common.cli", "serve", service, "--host", host, "--port", str(ports[service])],
            env=env, start_new_session=True,
        )

    def stop_all(*_):  # noqa: ANN002
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        # Killed only once a service had all the time its own shutdown may take.
        grace = ServiceSettings.model_fields["shutdown_grace_seconds"].default
        try:
            grace = float(env.get("KHAIBAO_SHUTDOWN_GRACE_SECONDS") or grace)
        except ValueError:  # the services refused it at start-up already
            pass
        deadline = time.monotonic() + HTTP_GRACE_SECONDS + grace + CANCELLED_WAIT_SECONDS + 2
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        missing = _wait_healthy(urls, args.timeout, procs)
        if missing:
            print(f"not healthy after {args.timeout:.0f}s: {', '.join(missing)}", file=sys.stderr)
            stop_all()
            return 1
        week_marker = data_dir / "demo-week.done"
        if fresh and not args.no_demo and not args.no_demo_week and not week_marker.exists():
            if _load_demo_week(env, procs) == 0:
                week_marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z") + "\n", encoding="utf-8")
            else:
                print("Không nạp được tuần dữ liệu mẫu / the demo week could not be loaded; "
                      "the system runs without it.", file=sys.stderr, flush=True)
        landing_url = f"http://{host}:{args.base_port}"
        _print_banner(landing_url, urls, [] if args.no_demo else DEMO_ACCOUNTS, DEMO_PASSWORD, args,
                      mailbox_port=catcher.port, relays=relays, lists_port=env.get("KHAIBAO_INTAKE_SMTP_PORT"))
        _run_landing(host, args.base_port, urls, [] if args.no_demo else DEMO_ACCOUNTS, DEMO_PASSWORD, procs,
                     mailbox=mailbox, relays=relays)
    except KeyboardInterrupt:
        pass
    finally:
        print("\nĐang dừng hệ thống / stopping ...", flush=True)
        stop_all()
        catcher.stop()
    return 0


def _load_demo_week(env: Mapping[str, str], procs: dict[str, subprocess.Popen]) -> int:
    """``khaibao demo-week`` with the services' environment (it prints its progress); its
    exit code. Stopped if a service stops meanwhile."""
    started = time.monotonic()
    loader = subprocess.Popen([sys.executable, "-m", "libs.common.cli", "demo-week"], env=dict(env))
    try:
        while loader.poll() is None:
            for service, proc in procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{service} exited with code {proc.returncode}")
            time.sleep(0.2)
    finally:
        if loader.poll() is None:  # stopped (Ctrl-C, SIGTERM) or a service died meanwhile
            loader.terminate()
            try:
                loader.wait(10)
            except subprocess.TimeoutExpired:
                loader.kill()
    if loader.returncode == 0:
        print(f"  Tuần dữ liệu mẫu đã nạp / demo week loaded in {time.monotonic() - started:.0f} s", flush=True)
    return loader.returncode


def _demo_week(args: argparse.Namespace) -> int:
    from .demo_week import main as load_week

    return load_week()


def _print_banner(landing_url, urls, accounts, password, args, *, mailbox_port=None,  # noqa: ANN001
                  relays=(), lists_port=None) -> None:
    mode = "PostgreSQL" if args.database_url else "SQLite"
    bus = "Kafka" if args.kafka else "embedded bus"
    print("\n" + "=" * 72)
    print(f"  khaibao is running ({mode} + {bus}). Open: {landing_url}")
    print("=" * 72)
    for service, url in urls.items():
        print(f"  {service:<13} {url}")
    if accounts:
        print(f"\n  Demo sign-ins (password for all: {password}):")
        for username, name, role, jurisdiction in accounts:
            print(f"    {username:<20} {role:<15} {name}")
    if mailbox_port:
        print(f"\n  Hộp thư thử / demo mailbox: {landing_url}/mailbox (SMTP 127.0.0.1:{mailbox_port})")
        for relay in relays:
            print(f"  (e-mails of a service configured with the relay {relay} go there instead)")
    if lists_port:
        print(f"  Danh sách qua e-mail / lists by e-mail: SMTP 127.0.0.1:{lists_port}, "
              "to danhsach.<district code>@<KHAIBAO_INTAKE_MAIL_DOMAIN>")
    print("\n  Ctrl-C stops everything.\n", flush=True)


def _run_landing(host, port, urls, accounts, password, procs, *, mailbox=None, relays=()) -> None:  # noqa: ANN001
    import uvicorn

    from .ui.landing import create_landing_app

    links = [{"service": s, "title_vi": SERVICE_DESCRIPTIONS[s][0], "title_en": SERVICE_DESCRIPTIONS[s][1],
              "url": urls[s], "description_vi": SERVICE_DESCRIPTIONS[s][2],
              "description_en": SERVICE_DESCRIPTIONS[s][3]} for s in SERVICES]
    # The role, not its label: the page names it in the visitor's language.
    demo = [{"role": str(role), "username": username, "password": password,
             "jurisdiction": name} for username, name, role, _ in accounts]
    app = create_landing_app(links, demo, mailbox=mailbox, mail_relay=", ".join(relays) or None)
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    server = uvicorn.Server(config)

    async def main() -> None:
        serving = asyncio.create_task(server.serve())
        while not serving.done():
            for service, proc in procs.items():
                if proc.poll() is not None:
                    print(f"{service} stopped unexpectedly (exit code {proc.returncode})", file=sys.stderr)
                    server.should_exit = True
            await asyncio.sleep(1)
        await serving

    # uvicorn handles SIGINT/SIGTERM while it serves and raises them again when it stops;
    # by then the launcher is already on its way out, so the repeat is ignored.
    signal.signal(signal.SIGINT, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: None)
    asyncio.run(main())


def _version() -> str:
    """The installed distribution's version; pyproject's when run from a checkout without it."""
    from importlib import metadata

    try:
        return metadata.version("khaibao")
    except metadata.PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="khaibao", description="Electronic health declaration system")
    parser.add_argument("--version", action="version", version=f"khaibao {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run the whole system locally")
    up.add_argument("--data-dir", default=os.environ.get("KHAIBAO_DATA_DIR", "var"))
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--base-port", type=int, default=DEFAULT_PORTS["landing"])
    up.add_argument("--database-url", default=os.environ.get("KHAIBAO_UP_DATABASE_URL"),
                    help="a PostgreSQL server URL; each service gets its own database on it")
    up.add_argument("--kafka", default=os.environ.get("KHAIBAO_UP_KAFKA"), help="Kafka bootstrap host:port")
    up.add_argument("--no-demo", action="store_true", help="start without demo data")
    up.add_argument("--no-demo-week", action="store_true",
                    help="demo accounts and units, but not the past week of declarations and alerts")
    up.add_argument("--timeout", type=float, default=60)
    serve = commands.add_parser("serve", help="run one service")
    serve.add_argument("service", choices=SERVICES)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--check-timeout", type=float, default=5.0,
                       help="production: seconds the database and Kafka get to answer the start-up check")

    commands.add_parser("demo-week", help="(run by `khaibao up`) load a past week into the running demo")

    operator_handlers = operations.add_commands(commands)
    args = parser.parse_args(argv)
    handlers = {"up": _up, "serve": _serve, "demo-week": _demo_week, **operator_handlers}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
