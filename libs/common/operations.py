"""The operator's commands: ``khaibao check-config``, ``khaibao keys`` (``init``, ``rotate``,
``reseal``) and ``khaibao accounts``.

They prepare and check a production deployment (deploy/README.md); ``libs/common/cli.py``
adds them to the ``khaibao`` command with ``add_commands``.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from .settings import SERVICES

T = TypeVar("T")


def run_checks(service: str, *, timeout: float, connect: bool = True):  # noqa: ANN202 - checks.Report
    from .checks import Report, check

    try:
        return check(service, connect=connect, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - a line to fix, never a traceback
        return Report(problems=[f"check-config {service}: {type(exc).__name__}: {exc}"])


def check_config(args: argparse.Namespace) -> int:
    report = run_checks(args.service, timeout=args.timeout, connect=not args.offline)
    for line in report.warnings:
        print(f"warning: {line}", file=sys.stderr)
    for line in report.problems:
        print(line)
    if report.problems:
        return 1
    print("ok")
    return 0


def reseal_command(args: argparse.Namespace) -> int:
    """``khaibao keys reseal SERVICE``: the service's settings (its key files, its database)."""
    from sqlalchemy.exc import SQLAlchemyError

    from .checks import load_settings, settings_class
    from .db import Database
    from .fieldcrypt import FieldCryptError
    from .reseal import reseal, sealed_tables, service_metadata

    settings, problems = load_settings(settings_class(args.service))
    if problems or settings is None:
        for line in problems:
            print(line, file=sys.stderr)
        print(f"khaibao keys reseal: {args.service}'s settings are not valid; nothing was rewritten", file=sys.stderr)
        return 1
    tables = sealed_tables(service_metadata(args.service))
    if not tables:
        print(f"{args.service}: no encrypted column", file=sys.stderr)
        return 0

    async def run() -> dict[str, int]:
        database = Database.for_settings(settings)
        try:
            return await reseal(database, settings.field_ring(), tables, batch=args.batch, reindex=args.reindex,
                                echo=lambda line: print(line, flush=True))
        finally:
            await database.dispose()

    try:
        done = asyncio.run(run())
    except FieldCryptError as exc:
        print(f"{settings.env_name('field_keys_file')}: {exc}; nothing more was rewritten (the batches done "
              "are kept: run again with the right keys)", file=sys.stderr)
        return 1
    except (OSError, SQLAlchemyError) as exc:
        print(f"{settings.env_name('database_url')}: cannot use the database: {type(exc).__name__}", file=sys.stderr)
        return 1
    print(f"{args.service}: {sum(done.values())} rows rewritten under the current field key")
    return 0


def keys_command(args: argparse.Namespace) -> int:
    from . import keys

    if args.keys_command == "reseal":
        return reseal_command(args)
    try:
        if args.keys_command == "init":
            keys.init(Path(args.directory), compose_owners=args.compose_owners)
        else:
            keys.rotate(args.kind, Path(args.directory))
    except keys.KeysError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"cannot write in {args.directory}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def accounts_command(args: argparse.Namespace) -> int:
    from .checks import load_settings

    from services.provisioning.settings import ProvisioningSettings

    settings, problems = load_settings(ProvisioningSettings)
    if problems or settings is None:
        for line in problems:
            print(line, file=sys.stderr)
        print("khaibao accounts create: provisioning's settings are not valid; nothing was created",
              file=sys.stderr)
        return 1
    if args.accounts_command == "create-client":
        return _create_client(args, settings)
    if args.accounts_command in ("disable-client", "enable-client"):
        return _switch_client(args, settings)
    return _create_official(args, settings)


def _operate(settings, action: Coroutine[Any, Any, T]) -> T | None:  # noqa: ANN001 - ProvisioningSettings
    """Runs one of provisioning's operator actions to its end: its result, or None after one line
    on standard error (the refusal's own words, or the database variable that cannot be used)."""
    import asyncpg
    from sqlalchemy.exc import SQLAlchemyError

    from services.provisioning.operator.bootstrap import BootstrapRefused

    try:
        return asyncio.run(action)
    except BootstrapRefused as exc:
        print(str(exc), file=sys.stderr)
    except (OSError, SQLAlchemyError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
        print(f"{settings.env_name('database_url')}: cannot use the database: {type(exc).__name__}",
              file=sys.stderr)
    return None


def _create_official(args: argparse.Namespace, settings) -> int:  # noqa: ANN001 - ProvisioningSettings
    from services.provisioning.operator.bootstrap import create_official

    created = _operate(settings, create_official(settings, username=args.username, name=args.name,
                                                 role=args.role, jurisdiction=args.jurisdiction))
    if created is None:
        return 1
    print(f"Đã tạo tài khoản / created account {created.username} ({created.role}, "
          f"{created.jurisdiction_name} {created.jurisdiction}). Mật khẩu dùng một lần (phải đổi khi đăng nhập "
          f"lần đầu) / one-time password (to change at the first sign-in), on standard output:",
          file=sys.stderr)
    print(created.password, flush=True)
    return 0


def _create_client(args: argparse.Namespace, settings) -> int:  # noqa: ANN001 - ProvisioningSettings
    from services.provisioning.operator.clients import create_interop_client

    created = _operate(settings, create_interop_client(settings, client_id=args.client_id, name=args.name,
                                                       jurisdiction=args.jurisdiction, scopes=args.scope))
    if created is None:
        return 1
    print(f"Đã tạo client liên thông / created interoperability client {created.client_id} (scope "
          f"{created.scopes}, {created.jurisdiction}). Khóa bí mật chỉ hiện một lần / the secret, shown once, "
          "on standard output:", file=sys.stderr)
    print(created.secret, flush=True)
    return 0


def _switch_client(args: argparse.Namespace, settings) -> int:  # noqa: ANN001 - ProvisioningSettings
    from services.provisioning.operator.clients import set_client_disabled

    disabled = args.accounts_command == "disable-client"
    client_id = _operate(settings, set_client_disabled(settings, args.client_id, disabled=disabled))
    if client_id is None:
        return 1
    state = "đã khóa / disabled" if disabled else "đã mở lại / enabled"
    print(f"Client liên thông {client_id}: {state}", file=sys.stderr)
    return 0


def add_commands(commands) -> dict[str, Callable[[argparse.Namespace], int]]:  # noqa: ANN001 - argparse's subparsers
    """The operator's subcommands on ``commands``; their handlers by command name."""
    check = commands.add_parser(
        "check-config", help="check a service's settings, keys, database and bus; 'ok' or one line per problem",
        description="Reads the service's settings from the environment as `serve` does and prints every "
                    "problem, one line each, naming the variable (exit 1), or 'ok' (exit 0). Warnings "
                    "(the SMTP relay of notification) go to stderr and do not fail the check.")
    check.add_argument("service", choices=SERVICES)
    check.add_argument("--timeout", type=float, default=3.0, help="seconds each connection may take")
    check.add_argument("--offline", action="store_true", help="do not connect to the database, Kafka or SMTP")

    keys = commands.add_parser("keys", help="create or rotate the keys and secrets of a production deployment")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    init = keys_commands.add_parser(
        "init", help="write every key and secret file into DIR (mode 0600; never overwrites)",
        description="Writes token_private.pem token_public.pem (Ed25519, tokens), pass_private.pem "
                    "pass_public.pem (Ed25519, personal QR passes), credentials_private.pem "
                    "credentials_public.pem (X25519, sealed initial passwords and persons on the bus), "
                    "secret_key (cookies and CSRF), db_password (PostgreSQL) and grafana_admin_password, "
                    "each with mode 0600. "
                    "Refuses (exit 1, nothing written) if any of them exists. Give each file to the uid "
                    "of the container that reads it (deploy/README.md).")
    init.add_argument("directory")
    init.add_argument("--compose-owners", action="store_true",
                      help="as root: give each file to the uid of the docker-compose.yml container that reads "
                           "it (services 10001, PostgreSQL 999 with db_password 0440 for both, Grafana 472)")
    rotate = keys_commands.add_parser(
        "rotate", help="a new key pair of one kind; the old public key kept as <kind>_public.previous.pem",
        description="Replaces <kind>_private.pem and <kind>_public.pem with a new pair and keeps the old "
                    "public key as <kind>_public.previous.pem (credentials: also the old private key as "
                    "credentials_private.previous.pem), for KHAIBAO_AUTH_PREVIOUS_PUBLIC_KEY_FILES, "
                    "KHAIBAO_DECLARATION_PASS_PREVIOUS_PUBLIC_KEY_FILES and "
                    "KHAIBAO_NOTIFICATION_CREDENTIALS_PREVIOUS_PRIVATE_KEY_FILES. Only one previous "
                    "generation is kept: rotating again replaces the .previous.pem files, and the "
                    "oldest key is no longer accepted. 'field': a new key first in field_keys (the "
                    "personal fields encrypted at rest); the older lines stay to open what they "
                    "sealed, drop one once the retention period has passed since the rotation.")
    rotate.add_argument("kind", choices=("token", "pass", "credentials", "field"))
    rotate.add_argument("directory")
    reseal = keys_commands.add_parser(
        "reseal", help="rewrite a service's encrypted fields under the current field key",
        description="Every encrypted column of SERVICE (libs/common/fieldcrypt.py): the rows stored in clear "
                    "(before encryption) or under an earlier key of field_keys are rewritten with the current "
                    "key, and the blind index columns (ID number, phone) are filled. In batches, each its own "
                    "transaction; it can be stopped and run again. Reads the service's settings like the "
                    "service (KHAIBAO_FIELD_KEYS_FILE, KHAIBAO_INDEX_KEY_FILE, its database). Afterwards the "
                    "earlier keys can be dropped from field_keys.")
    reseal.add_argument("service", choices=SERVICES)
    reseal.add_argument("--batch", type=int, default=500, help="rows per transaction (default 500)")
    reseal.add_argument("--reindex", action="store_true",
                        help="recompute every blind index (after the index key changed)")

    accounts = commands.add_parser("accounts", help="operator bootstrap of officials' accounts")
    accounts_commands = accounts.add_subparsers(dest="accounts_command", required=True)
    create = accounts_commands.add_parser(
        "create", help="create an official's account with a one-time password (printed alone on stdout)",
        description="Run with provisioning's environment: applies its migrations if needed and creates the "
                    "account with a random one-time password that must be changed at the first sign-in. "
                    "The password is the only line on standard output (PASSWORD=$(khaibao accounts "
                    "create ...)); messages go to standard error.")
    create.add_argument("--username", required=True)
    create.add_argument("--name", required=True, help="the name shown for the account (the office)")
    create.add_argument("--role", required=True, choices=("city_dic", "district_focal", "commune_focal",
                                                          "health_officer"))
    create.add_argument("--jurisdiction", required=True,
                        help="a path of the admin-unit tree: 79 (the city), 79/760 (a district), 79/760/26734")
    client = accounts_commands.add_parser(
        "create-client", help="create an interoperability client (FHIR export); its secret printed once on stdout",
        description="Run with provisioning's environment: creates a machine client of a national system with a "
                    "random secret (only its argon2 hash is kept). The client exchanges its id and secret for a "
                    "token at POST /api/oauth/token (grant_type=client_credentials) and gives a purpose on every "
                    "call of the FHIR export. The secret is the only line on standard output.")
    client.add_argument("--client-id", required=True, help="e.g. ncovi-sync (a-z, 0-9, '.', '_', '-')")
    client.add_argument("--name", required=True, help="the system it belongs to, shown in the access log")
    client.add_argument("--jurisdiction", required=True, help="what its tokens cover: 79 (the city) or a district")
    client.add_argument("--scope", action="append", choices=("fhir.read",), required=True)
    for name, verb in (("disable-client", "refuse new tokens to"), ("enable-client", "allow tokens again to")):
        switch = accounts_commands.add_parser(name, help=f"{verb} an interoperability client (its current "
                                                         "tokens end with their 30 minutes)")
        switch.add_argument("--client-id", required=True)
    return {"check-config": check_config, "keys": keys_command, "accounts": accounts_command}
