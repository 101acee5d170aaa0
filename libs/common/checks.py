"""``khaibao check-config SERVICE``: is this environment fit to run the service?

The service's settings are read from the environment exactly as ``serve`` reads them, and
every problem is listed, one line each, naming the variable to fix (never a secret's
value): settings the validation refuses, key files missing, unreadable or not keys of the
right type, a public key that is not its private key's, placeholder secrets, a database or
Kafka that does not answer. ``serve`` runs the same checks in production before uvicorn
starts, and stops with the same lines.

The SMTP relay of notification is only a warning: credentials e-mails are retried for
hours and then handed over through the Support Channel, and the alert inbox and the Support
Channel work without mail, so a relay that is down for maintenance must not keep the
service from starting.
"""
from __future__ import annotations

import asyncio
import importlib
import logging
import os
import smtplib
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from pydantic import ValidationError

from .settings import PLACEHOLDER_SECRETS, SERVICES, ServiceSettings, collecting_problems, read_secret_file

DEFAULT_TIMEOUT = 3.0


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    settings: ServiceSettings | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def settings_class(service: str) -> type[ServiceSettings]:
    """The settings class of ``service`` (from services/<service>/settings.py; no app needed)."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; one of: {', '.join(SERVICES)}")
    module = importlib.import_module(f"services.{service}.settings")
    for obj in vars(module).values():
        if (isinstance(obj, type) and issubclass(obj, ServiceSettings) and obj is not ServiceSettings
                and obj.model_fields["service_name"].default == service):
            return obj
    raise LookupError(f"no settings class in services.{service}.settings")


def production_requested(service: str) -> bool:
    """Whether the environment asks for production (as the settings would read it)."""
    value = os.environ.get(f"KHAIBAO_{service.upper()}_ENVIRONMENT", os.environ.get("KHAIBAO_ENVIRONMENT", ""))
    return value.strip().lower() == "production"


# --- settings ----------------------------------------------------------------------------

def _validation_lines(cls: type[ServiceSettings], error: ValidationError) -> tuple[list[str], set[str]]:
    lines, fields = [], set()
    for item in error.errors(include_input=False, include_url=False):
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        loc = item.get("loc") or ()
        if loc and str(loc[0]) in cls.model_fields:
            fields.add(str(loc[0]))
            lines.append(f"{cls.env_name(str(loc[0]))}: {message}")
        else:
            lines.extend(message.splitlines())
    return lines, fields


def load_settings(cls: type[ServiceSettings]) -> tuple[ServiceSettings | None, list[str]]:
    """The settings from the environment and every problem of them.

    A value the validation refuses is reported, then replaced by its default so that the
    checks of the other values still run (several rounds at most)."""
    problems: list[str] = []
    replaced: dict[str, Any] = {}
    for _ in range(5):
        with collecting_problems() as collected:
            try:
                settings = cls(**replaced)
            except ValidationError as exc:
                lines, fields = _validation_lines(cls, exc)
                problems += [line for line in lines if line not in problems]
                fields -= set(replaced)
                if not fields:
                    return None, problems
                for name in fields:
                    replaced[name] = cls.model_fields[name].get_default(call_default_factory=True)
                continue
        problems += [line for line in collected if line not in problems]
        return settings, problems
    return None, problems


# --- key files ----------------------------------------------------------------------------

def _loader(kind: str) -> Callable[[bytes], Any]:
    types = {"ed25519": (Ed25519PrivateKey, Ed25519PublicKey), "x25519": (X25519PrivateKey, X25519PublicKey)}
    algorithm, half = kind.split("-")
    expected = types[algorithm][0 if half == "private" else 1]

    def load(data: bytes) -> Any:
        key = (serialization.load_pem_private_key(data, password=None) if half == "private"
               else serialization.load_pem_public_key(data))
        if not isinstance(key, expected):
            raise ValueError(f"not an {algorithm.capitalize()} {half} key")
        return key

    return load


def _read(name: str, path: Path, problems: list[str]) -> bytes | None:
    path = Path(path)
    if not path.exists():
        problems.append(f"{name}: file not found: {path}")
        return None
    if not path.is_file():
        problems.append(f"{name}: not a file: {path}")
        return None
    try:
        return path.read_bytes()
    except PermissionError:
        problems.append(f"{name}: cannot read {path}: permission denied (uid {os.getuid()})")
    except OSError as exc:
        problems.append(f"{name}: cannot read {path}: {exc.strerror or type(exc).__name__}")
    return None


def _key(name: str, path: Path, kind: str, problems: list[str]) -> Any:
    data = _read(name, path, problems)
    if data is None:
        return None
    try:
        return _loader(kind)(data)
    except (ValueError, TypeError) as exc:
        reason = str(exc) if str(exc).startswith("not an") else "not a PEM key"
        problems.append(f"{name}: {path} is not a valid {kind.replace('-', ' ')} key ({reason})")
        return None


# (field, kind, required in production). Lists (previous keys) are checked file by file.
KEY_FILES: dict[str, list[tuple[str, str, bool]]] = {
    "*": [("auth_public_key_file", "ed25519-public", False),
          ("auth_previous_public_key_files", "ed25519-public", False)],
    "provisioning": [("auth_private_key_file", "ed25519-private", False),
                     ("credentials_public_key_file", "x25519-public", True)],
    "declaration": [("pass_private_key_file", "ed25519-private", False),
                    ("pass_previous_public_key_files", "ed25519-public", False),
                    ("sealing_public_key_file", "x25519-public", True)],
    "notification": [("credentials_private_key_file", "x25519-private", True),
                     ("credentials_previous_private_key_files", "x25519-private", False)],
}
REQUIRED_WHY = {
    "credentials_public_key_file": "the notification service's credentials public key: without it no "
                                   "account can be issued",
    "credentials_private_key_file": "the credentials private key: without it no issued password can be opened",
    "sealing_public_key_file": "the notification service's credentials public key: without it no red "
                               "declaration or gate case can reach the alerts (personal details are sealed to it)",
}


def _raw_public(key: Any) -> bytes:
    public = key.public_key() if hasattr(key, "public_key") else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_problems(settings: ServiceSettings) -> list[str]:
    problems: list[str] = []
    loaded: dict[str, Any] = {}
    production = settings.environment == "production"
    for field_name, kind, required in KEY_FILES["*"] + KEY_FILES.get(settings.service_name, []):
        value = getattr(settings, field_name, None)
        name = settings.env_name(field_name)
        if value is None:
            if required and production:
                problems.append(f"{name}: required in production ({REQUIRED_WHY[field_name]})")
            continue
        for path in value if isinstance(value, list) else [value]:
            key = _key(name, path, kind, problems)
            if key is not None and not isinstance(value, list):
                loaded[field_name] = key
    private, public = loaded.get("auth_private_key_file"), loaded.get("auth_public_key_file")
    if private is not None and public is not None and _raw_public(private) != _raw_public(public):
        problems.append(f"{settings.env_name('auth_public_key_file')}: does not match "
                        f"{settings.env_name('auth_private_key_file')} (tokens signed with it would be refused)")
    return problems


def secret_file_problems(settings: ServiceSettings) -> list[str]:
    problems: list[str] = []
    if settings.database_password_file is not None:
        name = settings.env_name("database_password_file")
        if _read(name, settings.database_password_file, problems) is not None:
            try:
                password = read_secret_file(settings.database_password_file)
            except UnicodeDecodeError:
                problems.append(f"{name}: {settings.database_password_file} is not text")
            else:
                if password.lower() in PLACEHOLDER_SECRETS and settings.environment == "production":
                    problems.append(f"{name}: the database password is empty or a placeholder")
    return problems


# --- what the service connects to ----------------------------------------------------------

def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


async def _database_problem(settings: ServiceSettings, timeout: float) -> tuple[str | None, str | None]:
    """(problem, warning) about the database."""
    from .db import asyncpg_options, describe_hosts, parse_url

    name = settings.env_name("database_url")
    try:
        url = parse_url(settings.resolved_database_url())
    except Exception:  # noqa: BLE001 - any unparsable URL
        return f"{name}: not a database URL", None
    warning = None
    if url.password is not None and settings.database_password_file is not None:
        warning = f"{name}: holds a password, and {settings.env_name('database_password_file')} replaces it"
    elif url.password is not None and settings.environment == "production":
        warning = (f"{name}: holds a password; give it in a file "
                   f"({settings.env_name('database_password_file')}) instead")
    if url.get_backend_name() != "postgresql":
        return None, warning
    try:
        password = settings.database_password()
    except (OSError, UnicodeDecodeError):
        return None, warning  # reported by secret_file_problems
    password = url.password if password is None else password
    where = describe_hosts(url)
    import asyncpg

    try:
        connection = await asyncio.wait_for(asyncpg.connect(**asyncpg_options(url, password), timeout=timeout),
                                            timeout + 1)
        try:
            await asyncio.wait_for(connection.fetchval("SELECT 1"), timeout)
        finally:
            await connection.close(timeout=timeout)
    except (asyncio.TimeoutError, TimeoutError):
        return f"{name}: the database at {where} did not answer within {timeout:g}s", warning
    except Exception as exc:  # noqa: BLE001 - refused, unknown host, authentication, missing database
        detail = _redact(str(exc).splitlines()[0] if str(exc) else "", password)
        return (f"{name}: cannot connect to the database at {where}: {type(exc).__name__}"
                + (f": {detail}" if detail else "")), warning
    return None, warning


async def _bus_problem(settings: ServiceSettings, timeout: float) -> str | None:
    scheme, _, rest = settings.bus_url.partition("://")
    name = settings.env_name("bus_url")
    if scheme == "embedded":
        return None
    if scheme != "kafka" or not rest:
        return f"{name}: unknown bus URL scheme {scheme!r}: use embedded:// or kafka://host:port"
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=rest, request_timeout_ms=int(timeout * 1000),
                            client_id="khaibao-check-config")
    # aiokafka logs each refused connection itself: the one line below says it.
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        await asyncio.wait_for(client.bootstrap(), timeout + 1)
    except (asyncio.TimeoutError, TimeoutError):
        return f"{name}: Kafka at {rest} did not answer within {timeout:g}s"
    except Exception as exc:  # noqa: BLE001 - KafkaConnectionError and friends
        return f"{name}: Kafka at {rest} does not answer: {type(exc).__name__}"
    finally:
        try:
            await client.close()
        except Exception:  # noqa: BLE001, S110 - nothing to close after a failed bootstrap
            pass
        quiet.setLevel(level)
    return None


def _smtp_warning(settings: ServiceSettings, timeout: float) -> str | None:
    host, port = getattr(settings, "smtp_host", None), getattr(settings, "smtp_port", None)
    if not host or not port:
        return None
    try:
        if getattr(settings, "smtp_use_tls", False):
            client = smtplib.SMTP_SSL(host, port, timeout=timeout)
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        try:
            client.noop()
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                pass
    except (smtplib.SMTPException, OSError, socket.timeout) as exc:
        return (f"{settings.env_name('smtp_host')}: the SMTP relay {host}:{port} does not answer "
                f"({type(exc).__name__}); e-mails wait and are retried")
    return None


# --- the whole check --------------------------------------------------------------------------

async def _connections(settings: ServiceSettings, timeout: float, report: Report) -> None:
    (db_problem, db_warning), bus_problem = await asyncio.gather(
        _database_problem(settings, timeout), _bus_problem(settings, timeout))
    report.problems += [p for p in (db_problem, bus_problem) if p]
    report.warnings += [w for w in (db_warning,) if w]
    if settings.service_name == "notification":
        warning = await asyncio.to_thread(_smtp_warning, settings, timeout)
        if warning:
            report.warnings.append(warning)


def check(service: str, *, connect: bool = True, timeout: float = DEFAULT_TIMEOUT) -> Report:
    """Every problem of ``service``'s environment (and warnings that do not stop it)."""
    cls = settings_class(service)
    settings, problems = load_settings(cls)
    report = Report(problems=problems, settings=settings)
    if settings is None:
        return report
    report.problems += key_problems(settings)
    report.problems += secret_file_problems(settings)
    if connect:
        asyncio.run(_connections(settings, timeout, report))
    return report
