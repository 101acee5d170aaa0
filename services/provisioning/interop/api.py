"""``POST /api/oauth/token``: the client-credentials grant (RFC 6749 section 4.4).

A form (``grant_type=client_credentials``, ``client_id``, ``client_secret``; or the id and
secret in HTTP Basic) answered with a short-lived token of the role ``interop_client``
that carries the client's jurisdiction and its ``scope``. Errors are OAuth's: 400
``invalid_request`` / ``unsupported_grant_type`` / ``invalid_scope``, 401 ``invalid_client``.
"""
from __future__ import annotations

import base64
import binascii
import logging
from urllib.parse import unquote

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse

from ..tokens import signer_for
from .service import authenticate_client, principal_of_client

router = APIRouter(prefix="/api/oauth", tags=["identity"])
log = logging.getLogger(__name__)
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


def _error(status: int, error: str, description: str) -> JSONResponse:
    headers = {**NO_STORE, **({"www-authenticate": 'Basic realm="khaibao"'} if status == 401 else {})}
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=headers)


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        user, _, secret = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return unquote(user), unquote(secret)


@router.post("/token")
async def client_token(request: Request, grant_type: str = Form("", max_length=40),
                       client_id: str = Form("", max_length=80), client_secret: str = Form("", max_length=200),
                       scope: str = Form("", max_length=200)) -> JSONResponse:
    """A token for an interoperability client (its id and secret, issued by the city)."""
    if grant_type != "client_credentials":
        return _error(400, "unsupported_grant_type",
                      "Chỉ hỗ trợ grant_type=client_credentials / only grant_type=client_credentials is supported")
    basic = _basic(request)
    if basic:
        client_id, client_secret = basic
    if not client_id or not client_secret:
        return _error(400, "invalid_request", "Thiếu client_id hoặc client_secret / client_id and client_secret "
                                              "are required")
    runtime = request.app.state.runtime
    async with runtime.database.transaction() as session:
        client = await authenticate_client(session, client_id, client_secret)
        granted = client.scopes.split() if client else []
        principal = principal_of_client(client) if client else None
    if principal is None:
        log.info("interoperability client token refused (unknown client, wrong secret or disabled)")
        return _error(401, "invalid_client", "Sai mã client hoặc khóa bí mật / wrong client id or secret")
    asked = scope.split()
    if asked and not set(asked) <= set(granted):
        return _error(400, "invalid_scope", "Phạm vi không được cấp cho client này / scope not granted to this client")
    scopes = " ".join(asked or granted)
    log.info("token issued to interoperability client %s (scope %s)", principal.username, scopes)
    signer = signer_for(runtime)
    return JSONResponse({"access_token": signer.sign(principal, extra={"scope": scopes}), "token_type": "Bearer",
                         "expires_in": signer.ttl_seconds, "scope": scopes}, headers=NO_STORE)
