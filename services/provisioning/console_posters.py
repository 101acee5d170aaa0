"""Poster downloads: one venue's PDF, a ZIP of a unit's or an area's (a commune's) posters.

PDFs are drawn in a worker thread, and a ZIP is written to a temporary file that spills
to disk when large, then streamed: the event loop keeps answering meanwhile. Only active
venues the caller may see are printed.
"""
from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response, StreamingResponse

from libs.common.auth import OFFICIALS, Principal
from libs.common.console import console_user

from . import venues
from .models import Unit, Venue
from .posters import MAX_POSTERS_PER_ZIP, PosterData, poster_pdf, posters_zip, slug, venue_url
from .web import back, parse_id

router = APIRouter(include_in_schema=False)


def poster_data(request: Request, unit: Unit, venue: Venue) -> PosterData:
    settings = request.app.state.runtime.settings
    base = settings.declaration_base()
    return PosterData(unit_name=unit.name, venue_name=venue.name, address=venue.address,
                      area=request.app.state.runtime.tree.label(venue.commune_path), code=venue.code,
                      url=venue_url(base, venue.code), help_line=settings.help_line, declaration_base=base)


def _disposition(filename: str) -> str:
    return f"attachment; filename=\"{slug(filename.rsplit('.', 1)[0])}.{filename.rsplit('.', 1)[1]}\"; " \
           f"filename*=UTF-8''{quote(filename)}"


@router.get("/venues/{venue_id}/poster.pdf")
async def venue_poster(request: Request, venue_id: str, principal: Principal = Depends(console_user())):
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        venue = await venues.get_venue(session, principal, parse_id(venue_id))
        unit = await session.get(Unit, venue.unit_id) if venue else None
    if venue is None or unit is None:
        raise HTTPException(404)
    if not venue.active:
        return back(f"/venues/{venue.id}", error="venue_inactive")
    pdf = await asyncio.to_thread(poster_pdf, poster_data(request, unit, venue))
    return Response(pdf, media_type="application/pdf", headers={
        "content-disposition": _disposition(f"ma-qr-{unit.name}-{venue.name}-{venue.code}.pdf"),
        "cache-control": "private, no-store"})


def _stream(file) -> Iterator[bytes]:  # noqa: ANN001
    try:
        file.seek(0)
        while chunk := file.read(256 * 1024):
            yield chunk
    finally:
        file.close()


async def _zip_response(items: list[tuple[str, PosterData]], filename: str) -> StreamingResponse:
    spool = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)
    try:
        await asyncio.to_thread(posters_zip, items, spool)
    except BaseException:
        spool.close()
        raise
    return StreamingResponse(_stream(spool), media_type="application/zip", headers={
        "content-disposition": _disposition(filename), "cache-control": "private, no-store"})


@router.get("/units/{unit_id}/posters.zip")
async def unit_posters(request: Request, unit_id: str, principal: Principal = Depends(console_user())):
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        unit = await venues.get_unit(session, principal, parse_id(unit_id))
        if unit is None:
            raise HTTPException(404)
        active = [v for v in await venues.venues_of(session, unit.id) if v.active]
    if not active:
        return back(f"/units/{unit.id}", error="no_posters")
    items = [("", poster_data(request, unit, v)) for v in active]
    return await _zip_response(items, f"ma-qr-{unit.name}.zip")


@router.get("/areas/{code}/posters.zip")
async def area_posters(request: Request, code: str, principal: Principal = Depends(console_user(*OFFICIALS))):
    """All posters of a commune (or any area the official covers), one folder per unit."""
    runtime = request.app.state.runtime
    node = runtime.tree.by_code(code)
    if node is None or node.depth < 1 or not principal.covers(node.path):
        raise HTTPException(404)
    async with runtime.database.transaction(readonly=True) as session:
        rows = await venues.venues_in_area(session, principal, node.path)
    if not rows:
        return back(f"/units?area={quote(node.path, safe='')}", error="no_posters")
    if len(rows) > MAX_POSTERS_PER_ZIP:
        return back(f"/units?area={quote(node.path, safe='')}", error="too_many_posters")
    items = [(f"{slug(u.name, 50)}-{str(u.id)[:8]}", poster_data(request, u, v)) for u, v in rows]
    return await _zip_response(items, f"ma-qr-{node.name}.zip")
