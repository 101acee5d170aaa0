"""The city console: forwarded batches per district, issuing accounts, the progress of a job.

The district focal point sees its own batches (read only). A job's page refreshes itself
every two seconds with ``<meta http-equiv="refresh">`` while the job runs: no script.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request

from libs.common.auth import Principal, Role
from libs.common.console import console_user

from . import access, batches, issuing
from .web import back, district_of, flash, page_number, pages, parse_id

router = APIRouter(include_in_schema=False)


@router.get("/batches")
async def batch_list(request: Request, district: str | None = None,
                     principal: Principal = Depends(console_user(*access.BATCH_VIEWERS))):
    runtime = request.app.state.runtime
    tree = runtime.tree
    selected = district if district and tree.get(district) and principal.covers(district) else None
    async with runtime.database.transaction(readonly=True) as session:
        per_district = await batches.per_district(session, principal)
        rows = await batches.summaries(session, principal, district_path=selected)
    return request.app.state.templates.render(request, "provisioning/batches.html", {
        "per_district": sorted(per_district, key=lambda r: tree.label(r.district_path)),
        "batches": rows, "selected": selected, "tree": tree, "messages": flash(request),
        "area": tree.label(principal.jurisdiction), "can_issue": principal.role == Role.CITY_DIC,
    })


@router.get("/batches/{batch_id}")
async def batch_page(request: Request, batch_id: str, status: str | None = None, q: str | None = None,
                     page: str | None = None, principal: Principal = Depends(console_user(*access.BATCH_VIEWERS))):
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        batch = await batches.get_batch(session, principal, parse_id(batch_id))
        if batch is None:
            raise HTTPException(404)
        [summary] = [s for s in await batches.summaries(session, principal, district_path=batch.district_path)
                     if s.batch.id == batch.id] or [None]
        number = page_number(page)
        units, total = await batches.batch_units(session, batch.id, status=status, search=q, page=number)
    return request.app.state.templates.render(request, "provisioning/batch.html", {
        "batch": batch, "summary": summary, "units": units, "total": total, "page": number,
        "pages": pages(total, batches.PAGE_SIZE), "status": status or "", "q": (q or "")[:100],
        "tree": runtime.tree, "messages": flash(request), "can_issue": principal.role == Role.CITY_DIC,
        "district": runtime.tree.label(batch.district_path),
    })


@router.post("/batches/{batch_id}/issue")
async def issue_batch(request: Request, batch_id: str, principal: Principal = Depends(console_user(Role.CITY_DIC))):
    return await _issue(request, principal, parse_id(batch_id), None)


@router.post("/batches/{batch_id}/units/{registration_id}/issue")
async def issue_unit(request: Request, batch_id: str, registration_id: str,
                     principal: Principal = Depends(console_user(Role.CITY_DIC))):
    return await _issue(request, principal, parse_id(batch_id), parse_id(registration_id))


async def _issue(request: Request, principal: Principal, batch_id, registration_id):  # noqa: ANN001, ANN202
    runtime = request.app.state.runtime
    try:
        async with runtime.database.transaction() as session:
            batch = await batches.get_batch(session, principal, batch_id)
            if batch is None:
                raise HTTPException(404)
            job = await issuing.request_issue(session, principal, batch, registration_id)
    except issuing.IssueRefused as exc:
        return back(f"/batches/{batch_id}", error=exc.code)
    issuing.wake(runtime)
    return back(f"/jobs/{job.id}")


@router.get("/jobs/{job_id}")
async def job_page(request: Request, job_id: str, principal: Principal = Depends(console_user(*access.BATCH_VIEWERS))):
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        job = await issuing.get_job(session, principal, parse_id(job_id))
        if job is None:
            raise HTTPException(404)
        batch = await batches.get_batch(session, principal, job.batch_id)
    handled = job.done + job.skipped + job.failed
    running = job.status in issuing.OPEN
    response = request.app.state.templates.render(request, "provisioning/job.html", {
        "job": job, "batch": batch, "handled": min(handled, job.total), "running": running,
        "district": runtime.tree.label(district_of(runtime.tree, job.district_path)), "messages": flash(request),
    })
    if running:
        response.headers["cache-control"] = "no-store"
    return response
