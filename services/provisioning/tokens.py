"""The token signer of provisioning, from its private key (generated in development)."""
from __future__ import annotations

from datetime import timedelta

from libs.common.auth import Principal, TokenSigner, generate_key_pair, load_private_key
from libs.common.runtime import Runtime, default_key_paths

from . import signins
from .service import SignInFailed, authenticate, principal_of

# Sign-ins by outcome (khaibao_signins_total): counted by signins.record, with the row and the log line.
SIGNINS = signins.SIGNINS


def signer_for(runtime: Runtime) -> TokenSigner:
    signer = runtime.extras.get("signer")
    if signer is None:
        settings = runtime.settings
        private, public = default_key_paths(settings)
        private = settings.auth_private_key_file or private
        if not private.exists():
            if settings.environment == "production":
                raise RuntimeError("the token private key file is missing")
            generate_key_pair(private, settings.auth_public_key_file or public)
        signer = TokenSigner(load_private_key(private), issuer=settings.auth_issuer,
                             audience=settings.auth_audience, ttl_seconds=settings.token_ttl_seconds)
        runtime.extras["signer"] = signer
    return signer


async def sign_in(runtime: Runtime, username: str, password: str, *, address: str | None = None) -> Principal:
    """Check the credentials in a transaction of their own, so that a failure is counted
    (and a lock-out stored) even though the caller gets an error. Every attempt is put on
    the record (signins.record: a row, a log line, the metric) with the client ``address``."""
    settings = runtime.settings
    failure: SignInFailed | None = None
    async with runtime.database.transaction() as session:
        try:
            account = await authenticate(session, username, password, max_failed=settings.max_failed_signins,
                                         lockout=timedelta(seconds=settings.lockout_seconds))
            principal = principal_of(account)
        except SignInFailed as exc:
            failure = exc
    if failure is not None:
        await signins.record(runtime, outcome=failure.outcome, username=username, address=address)
        raise failure
    await signins.record(runtime, outcome="success", username=username, address=address)
    return principal
