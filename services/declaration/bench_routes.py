"""The two reference points of bench/declare.py, on the same server stack as the hot path.

Mounted only with ``KHAIBAO_DECLARATION_BENCH_ROUTES=true`` (refused in production), and
served through the same door as the hot path (fastpath.py):

- ``POST /api/bench/validate``: the validation ceiling: the same body read, bounded,
  validated, the venue looked up and the answers screened; nothing stored.
- ``POST /api/bench/naive``: the same declaration stored the ordinary way, an ORM
  session and its own transaction per request (``publish`` into the outbox, commit).
"""
from __future__ import annotations

import json
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from libs.common.outbox import publish

from .declare import DeclarationRefused, find_venue, prepare
from .messages import api_errors
from .models import Declaration, Submission
from .schemas import DeclarationIn
from .screening import answer_codes
from .web import BadBody, read_body

router = APIRouter(prefix="/api/bench", include_in_schema=False)
Answer = tuple[int, bytes, list[tuple[str, str]]]


def _json(status: int, value: object) -> Answer:
    return status, json.dumps(value, ensure_ascii=False).encode(), []


async def validate_only(runtime, body: bytes) -> Answer:  # noqa: ANN001
    try:
        data = DeclarationIn.model_validate_json(body)
    except ValidationError as exc:
        return _json(422, {"detail": api_errors(exc)})
    ports = runtime.extras["declaration"]
    try:
        await find_venue(ports.directory, data.venue_code)
    except DeclarationRefused as exc:
        return _json(exc.status, {"detail": exc.code})
    book = await ports.directory.rules()
    results = [book.screen(answer_codes(tuple(p.symptoms), tuple(p.exposures), p.symptom_other))[0]
               for p in data.people]
    return _json(200, {"declarations": [{"result": r} for r in results]})


async def naive(runtime, body: bytes) -> Answer:  # noqa: ANN001
    try:
        data = DeclarationIn.model_validate_json(body)
    except ValidationError as exc:
        return _json(422, {"detail": api_errors(exc)})
    ports = runtime.extras["declaration"]
    try:
        venue = await find_venue(ports.directory, data.venue_code)
    except DeclarationRefused as exc:
        return _json(exc.status, {"detail": exc.code})
    prepared = prepare(data, venue, await ports.directory.rules(), ports.keys, now=datetime.now(UTC),
                       valid_for=ports.valid_for, seal_to=ports.seal_to)
    try:
        async with runtime.database.transaction() as session:
            session.add(Submission(**prepared.submission))
            session.add_all([Declaration(**values) for values in prepared.declarations])
            await publish(session, *prepared.events)
    except IntegrityError:
        return _json(200, {"detail": "duplicate", "declarations": []})
    return _json(201, prepared.answer)


HANDLERS = {"/api/bench/validate": validate_only, "/api/bench/naive": naive}


async def _route(request: Request, handler) -> Response:  # noqa: ANN001
    runtime = request.app.state.runtime
    try:
        body = await read_body(request, runtime.settings.max_body_bytes)
    except BadBody as exc:
        return Response(json.dumps({"detail": exc.message}).encode(), status_code=exc.status)
    status, payload, _ = await handler(runtime, body)
    return Response(payload, status_code=status, media_type="application/json")


@router.post("/validate")
async def validate_route(request: Request) -> Response:
    return await _route(request, validate_only)


@router.post("/naive")
async def naive_route(request: Request) -> Response:
    return await _route(request, naive)
