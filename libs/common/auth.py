"""Identity: tokens signed by provisioning (Ed25519), verified everywhere with the public key.

A token carries the account, its role and its jurisdiction (a path in the admin-unit
tree such as ``79/760/26734``), and the unit for unit roles. Every service checks roles
and jurisdiction on the server: ``require(...)`` for the route, ``within(...)`` to filter
queries, ``ensure_within(...)`` for a single row.
"""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import Depends, HTTPException, Request, status
from sqlalchemy import ColumnElement, or_

SESSION_COOKIE = "khaibao_session"
ALGORITHM = "EdDSA"


class Role(StrEnum):
    CITY_DIC = "city_dic"
    DISTRICT_FOCAL = "district_focal"
    COMMUNE_FOCAL = "commune_focal"
    HEALTH_OFFICER = "health_officer"
    UNIT_ADMIN = "unit_admin"
    GATE_STAFF = "gate_staff"
    # A machine of a national system (FHIR, NCOVI), issued by the city: its token carries a
    # ``scope`` claim and it must give a purpose on every call (services/reporting/fhir/purposes.py).
    INTEROP_CLIENT = "interop_client"


OFFICIALS = frozenset({Role.CITY_DIC, Role.DISTRICT_FOCAL, Role.COMMUNE_FOCAL, Role.HEALTH_OFFICER})
UNIT_ROLES = frozenset({Role.UNIT_ADMIN, Role.GATE_STAFF})


@dataclass(frozen=True)
class Principal:
    account_id: str
    username: str
    name: str
    role: Role
    jurisdiction: str
    unit_id: str | None = None
    must_change_password: bool = False
    claims: dict = field(default_factory=dict, compare=False, repr=False)

    def covers(self, path: str) -> bool:
        return path_within(path, self.jurisdiction)

    @property
    def scopes(self) -> frozenset[str]:
        """The token's ``scope`` claim (interoperability clients), as a set."""
        return frozenset(str(self.claims.get("scope", "")).split())

    @property
    def session_id(self) -> str | None:
        """The session the token belongs to (kept across the tokens of one sign-in); the
        token's own id for a token without one."""
        value = self.claims.get("sid") or self.claims.get("jti")
        return str(value) if value else None


class AuthError(HTTPException):
    def __init__(self, detail: str = "Chưa đăng nhập hoặc phiên đã hết hạn / Not signed in or session expired"):
        super().__init__(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(HTTPException):
    def __init__(self, detail: str = "Không có quyền truy cập / Access denied"):
        super().__init__(status.HTTP_403_FORBIDDEN, detail)


class PasswordChangeRequired(Forbidden):
    def __init__(self):
        super().__init__("Cần đổi mật khẩu trước khi tiếp tục / Change your password first")


def path_within(path: str, ancestor: str) -> bool:
    """``79/760/26734`` is within ``79/760`` and within itself; ``79/7601`` is not."""
    return path == ancestor or path.startswith(ancestor + "/")


def within(column: ColumnElement, jurisdiction: str) -> ColumnElement[bool]:
    """SQL filter: rows whose path is the jurisdiction or below it."""
    escaped = jurisdiction.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return or_(column == jurisdiction, column.like(escaped + "/%", escape="\\"))


def ensure_within(principal: Principal, path: str) -> None:
    if not principal.covers(path):
        raise Forbidden("Ngoài phạm vi quản lý của bạn / Outside your jurisdiction")


# --- keys ----------------------------------------------------------------------------

def generate_key_pair(private_path: Path, public_path: Path) -> None:
    """Create an Ed25519 key pair (development and first deployment)."""
    key = Ed25519PrivateKey.generate()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    private_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    private_path.chmod(0o600)
    public_path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the token public key must be an Ed25519 key")
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the token private key must be an Ed25519 key")
    return key


class TokenSigner:
    """Provisioning only: it alone holds the private key."""

    def __init__(self, private_key: Ed25519PrivateKey, *, issuer: str, audience: str, ttl_seconds: int = 1800):
        self.private_key = private_key
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds

    def sign(self, principal: Principal, *, ttl_seconds: int | None = None, now: float | None = None,
             session_id: str | None = None, extra: dict | None = None) -> str:
        """A token for ``principal``. ``sid`` names the session: ``session_id``, else the one
        of the principal's own token (a fresh token for the same session), else a new one.
        ``iat`` keeps milliseconds, so that a revocation of "every token issued before T"
        (libs/common/sessions.py) spares the token issued at T for the session that made it."""
        moment = now if now is not None else time.time()
        issued = int(moment)
        claims = {
            "iss": self.issuer, "aud": self.audience, "sub": principal.account_id,
            "iat": round(moment, 3), "nbf": issued, "exp": issued + (ttl_seconds or self.ttl_seconds),
            "jti": uuid.uuid4().hex, "sid": session_id or principal.claims.get("sid") or uuid.uuid4().hex,
            "usr": principal.username, "name": principal.name,
            "role": str(principal.role), "jur": principal.jurisdiction,
        }
        if principal.unit_id:
            claims["unit"] = principal.unit_id
        if principal.must_change_password:
            claims["pwd"] = "change"
        for name, value in (extra or {}).items():  # e.g. an interoperability client's "scope"
            claims.setdefault(name, value)
        return jwt.encode(claims, self.private_key, algorithm=ALGORITHM)


class TokenVerifier:
    """Every service: verify signature, issuer, audience, expiry; build the principal.

    ``previous`` are the public keys of before a rotation (KHAIBAO_AUTH_PREVIOUS_PUBLIC_KEY_FILES):
    a token whose signature the current key refuses is tried with them, so that the sessions
    open at the rotation last until they expire.
    """

    def __init__(self, public_key: Ed25519PublicKey, *, issuer: str, audience: str, leeway: int = 10,
                 previous: Sequence[Ed25519PublicKey] = ()):
        self.public_key = public_key
        self.previous = tuple(previous)
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway

    def _decode(self, token: str) -> dict:
        keys = (self.public_key, *self.previous)
        for index, key in enumerate(keys):
            try:
                return jwt.decode(
                    token, key, algorithms=[ALGORITHM], issuer=self.issuer, audience=self.audience,
                    leeway=self.leeway, options={"require": ["exp", "iat", "sub", "iss", "aud"]},
                )
            except jwt.InvalidSignatureError:
                if index == len(keys) - 1:
                    raise
        raise AssertionError("unreachable")

    def verify(self, token: str) -> Principal:
        try:
            claims = self._decode(token)
            role = Role(claims["role"])
            jurisdiction = str(claims["jur"])
        except jwt.ExpiredSignatureError:
            raise AuthError("Phiên đăng nhập đã hết hạn / Session expired") from None
        except (jwt.PyJWTError, KeyError, ValueError, TypeError):
            raise AuthError("Mã xác thực không hợp lệ / Invalid token") from None
        if role in UNIT_ROLES and not claims.get("unit"):
            raise AuthError("Mã xác thực không hợp lệ / Invalid token")
        return Principal(
            account_id=str(claims["sub"]), username=str(claims.get("usr", "")), name=str(claims.get("name", "")),
            role=role, jurisdiction=jurisdiction, unit_id=claims.get("unit"),
            must_change_password=claims.get("pwd") == "change", claims=claims,
        )


# --- FastAPI dependencies --------------------------------------------------------------

def token_from_request(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.cookies.get(SESSION_COOKIE) or None


def current_principal(request: Request) -> Principal:
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    token = token_from_request(request)
    if not token:
        raise AuthError()
    runtime = request.app.state.runtime
    principal = runtime.verifier.verify(token)
    if runtime.sessions.revoked(principal.claims):
        # Signed out, account disabled, password changed or reset (libs/common/sessions.py).
        raise AuthError("Phiên đăng nhập đã kết thúc, vui lòng đăng nhập lại / Session ended, please sign in again")
    if request.method not in ("GET", "HEAD", "OPTIONS") and token == request.cookies.get(SESSION_COOKIE) \
            and request.scope.get("state", {}).get("csrf_verdict") is not True:
        # A state change authenticated by the cookie alone: our own page must have sent it
        # (libs/common/csrf.py).
        from .csrf import CsrfRejected
        raise CsrfRejected()
    request.state.principal = principal
    return principal


def require(*roles: Role, password_change: bool = False, refusal: str | None = None,
            on_refusal: Callable[[Request, Principal], Awaitable[None]] | None = None):
    """Dependency: a signed-in principal with one of ``roles`` (any role if none given).

    A principal that must change its initial password is refused everywhere except
    where ``password_change`` allows it (the change-password page). ``refusal``: the 403
    message for the roles not admitted, where the generic one would not say why.
    ``on_refusal``: awaited before a role not admitted is refused (e.g. to write the
    refusal to an access log in a transaction of its own).
    """
    allowed = frozenset(roles)

    if on_refusal is None:
        def dependency(principal: Principal = Depends(current_principal)) -> Principal:
            if principal.must_change_password and not password_change:
                raise PasswordChangeRequired()
            if allowed and principal.role not in allowed:
                raise Forbidden(refusal) if refusal else Forbidden()
            return principal

        return dependency

    async def dependency(request: Request, principal: Principal = Depends(current_principal)) -> Principal:  # type: ignore[misc]
        if principal.must_change_password and not password_change:
            raise PasswordChangeRequired()
        if allowed and principal.role not in allowed:
            await on_refusal(request, principal)
            raise Forbidden(refusal) if refusal else Forbidden()
        return principal

    return dependency


async def refused_request_fields(request: Request, *names: str) -> dict[str, str]:
    """What a refused request said in ``names`` (JSON or form body), for its ``on_refusal``
    log entry; an unreadable body says nothing rather than failing the refusal."""
    given: dict = {}
    try:
        if request.headers.get("content-type", "").startswith("application/json"):
            body = json.loads(await request.body() or b"{}")
            given = body if isinstance(body, dict) else {}
        else:
            given = dict(await request.form())
    except (ValueError, TypeError, UnicodeDecodeError, AssertionError):
        given = {}
    return {name: str(given.get(name) or "") for name in names}
