"""Load for the faults-under-load suite: visitors declaring, units registering, officials working.

* Visitors: declarations at a steady rate on POST /api/declarations, each with its own
  idempotency key. Like the real form, a visitor sends again (same key) after a connection
  error, a timeout or a 503, for a bounded time. Every 2xx answer is recorded with the
  declaration ids it returned and the phase (fault) it was accepted in.
* Units: a registration every few hundred milliseconds on POST /api/registrations (a state
  agency: the district reviews it). Every 201 is recorded with its phase. A registration
  whose answer was lost is not counted as accepted: the unit never got its reference.
* Officials: the district focal point accepts each registration and forwards what is
  ready (POST /api/batches); the city issues the accounts of every forwarded batch. They
  keep working after the load stops, until everything accepted has been through.
"""
from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx

from libs.common.auth import Role

from .harness import CITY, COMMUNE_CODE, DISTRICT, FaultSystem

RETRYABLE = {502, 503, 504}


@dataclass
class Ledger:
    """What the clients were told: accepted items by phase, and what went wrong on the way."""

    phase: str = "startup"
    declarations: dict[str, str] = field(default_factory=dict)       # declaration id -> phase
    registrations: dict[str, str] = field(default_factory=dict)      # registration id -> phase
    registration_emails: dict[str, str] = field(default_factory=dict)
    declaration_answers: Counter = field(default_factory=Counter)    # status (or error) -> count
    registration_answers: Counter = field(default_factory=Counter)
    official_answers: Counter = field(default_factory=Counter)
    declarations_retried: int = 0
    declarations_given_up: int = 0
    server_errors: Counter = field(default_factory=Counter)          # phase -> 5xx other than 502-504

    def note_5xx(self, status: int) -> None:
        if status >= 500 and status not in RETRYABLE:
            self.server_errors[self.phase] += 1


FIRST_NAMES = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Hoàng Cường", "Phạm Thu Dung", "Võ Minh Đức"]


def declaration_body(venue_code: str, n: int) -> dict:
    return {
        "venue_code": venue_code, "consent": True, "idempotency_key": uuid.uuid4().hex,
        "people": [{
            "full_name": FIRST_NAMES[n % len(FIRST_NAMES)], "id_type": "cccd", "id_number": f"079{n % 10**9:09d}",
            "birth": "12/05/1988", "gender": "female",
            "phone": f"09{n % 10**8:08d}", "province_code": "79", "district_code": "787",
            "commune_code": COMMUNE_CODE, "street": f"{n % 300 + 1} Đường Lương Văn Nho",
            "symptoms": [], "exposures": [],
        }],
    }


class Load:
    """Runs the drivers until ``stop_load()``; the officials until ``stop_officials()``."""

    def __init__(self, system: FaultSystem, ledger: Ledger, body=None) -> None:  # noqa: ANN001
        # ``body(venue_code, n)``: the n-th declaration (default: declaration_body).
        self.body = body or declaration_body
        self.system = system
        self.ledger = ledger
        self.timing = system.timing
        self.load_stopped = asyncio.Event()
        self.officials_stopped = asyncio.Event()
        self.to_review: dict[str, float] = {}
        self.tasks: list[asyncio.Task] = []
        self.inflight: set[asyncio.Task] = set()
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(10.0), limits=httpx.Limits(max_connections=200))
        self.counter = itertools.count(1)

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._declarations(), name="declarations"),
                      asyncio.create_task(self._registrations(), name="registrations"),
                      asyncio.create_task(self._reviews(), name="reviews"),
                      asyncio.create_task(self._forwarding(), name="forwarding"),
                      asyncio.create_task(self._issuing(), name="issuing")]

    async def stop_load(self) -> None:
        """No new declarations or registrations; wait for the visitors still retrying."""
        self.load_stopped.set()
        await asyncio.gather(*self.tasks[:2])
        if self.inflight:
            await asyncio.gather(*self.inflight, return_exceptions=True)

    async def stop_officials(self) -> None:
        self.officials_stopped.set()
        await asyncio.gather(*self.tasks[2:], return_exceptions=True)
        await self.client.aclose()

    def check(self) -> None:
        """A driver that crashed is a harness bug: raise it."""
        for task in self.tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()

    # -- visitors ------------------------------------------------------------------------------
    async def _declarations(self) -> None:
        interval = 1.0 / self.timing.rate
        next_at = time.monotonic()
        codes = self.system.venue_codes
        while not self.load_stopped.is_set():
            n = next(self.counter)
            task = asyncio.create_task(self._declare(self.body(codes[n % len(codes)], n)))
            self.inflight.add(task)
            task.add_done_callback(self.inflight.discard)
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def _declare(self, body: dict) -> None:
        url = f"{self.system.url('declaration')}/api/declarations"
        phase = self.ledger.phase
        deadline = time.monotonic() + self.timing.give_up
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self.client.post(url, json=body)
                status = response.status_code
            except httpx.HTTPError as exc:
                response, status = None, type(exc).__name__
            self.ledger.declaration_answers[status] += 1
            if response is not None and status in (200, 201):
                for declared in response.json()["declarations"]:
                    self.ledger.declarations.setdefault(declared["id"], phase)
                if attempt > 1:
                    self.ledger.declarations_retried += 1
                return
            if response is not None:
                self.ledger.note_5xx(status)
                if status not in RETRYABLE and status < 500:
                    return  # refused: the visitor is told why; nothing was accepted
            if time.monotonic() > deadline:
                self.ledger.declarations_given_up += 1
                return
            await asyncio.sleep(min(0.2 * attempt, 2.0))

    # -- units ----------------------------------------------------------------------------------
    async def _registrations(self) -> None:
        url = f"{self.system.url('intake')}/api/registrations"
        while not self.load_stopped.is_set():
            n = next(self.counter)
            email = f"donvi{n}@example.vn"
            body = {"unit_name": f"Phòng thử tải {uuid.uuid4().hex[:10]}", "unit_type": "state_agency",
                    "address": f"{n % 500 + 1} Đường Rừng Sác", "commune_code": COMMUNE_CODE,
                    "contact_name": "Nguyễn Văn An", "contact_position": "Chánh văn phòng",
                    "contact_phone": "0909 123 456", "contact_email": email, "venue_count": 1}
            phase = self.ledger.phase
            try:
                response = await self.client.post(url, json=body)
                status = response.status_code
            except httpx.HTTPError as exc:
                response, status = None, type(exc).__name__
            self.ledger.registration_answers[status] += 1
            if response is not None and status == 201:
                registration_id = response.json()["id"]
                self.ledger.registrations[registration_id] = phase
                self.ledger.registration_emails[registration_id] = email
                self.to_review[registration_id] = time.monotonic()
            elif response is not None:
                self.ledger.note_5xx(status)
            await asyncio.sleep(self.timing.registration_interval)

    # -- officials ------------------------------------------------------------------------------
    async def _call(self, method: str, url: str, headers: dict, **kwargs) -> httpx.Response | None:  # noqa: ANN003
        try:
            response = await self.client.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            self.ledger.official_answers[type(exc).__name__] += 1
            return None
        self.ledger.official_answers[response.status_code] += 1
        self.ledger.note_5xx(response.status_code)
        return response

    async def _reviews(self) -> None:
        base = self.system.url("intake")
        district = self.system.headers(Role.DISTRICT_FOCAL, DISTRICT)
        while not self.officials_stopped.is_set():
            for registration_id in list(self.to_review):
                response = await self._call("POST", f"{base}/api/registrations/{registration_id}/accept", district)
                if response is None:
                    break
                if response.status_code == 200:
                    del self.to_review[registration_id]
                elif response.status_code == 409:  # accepted before, the answer was lost
                    detail = await self._call("GET", f"{base}/api/registrations/{registration_id}", district)
                    if detail is not None and detail.status_code == 200 and detail.json()["status"] != "submitted":
                        del self.to_review[registration_id]
            await asyncio.sleep(0.2)

    async def _forwarding(self) -> None:
        base = self.system.url("intake")
        district = self.system.headers(Role.DISTRICT_FOCAL, DISTRICT)
        while not self.officials_stopped.is_set():
            await self._call("POST", f"{base}/api/batches", district, json={})
            await asyncio.sleep(self.timing.official_interval)

    async def _issuing(self) -> None:
        base = self.system.url("provisioning")
        city = self.system.headers(Role.CITY_DIC, CITY)
        while not self.officials_stopped.is_set():
            listed = await self._call("GET", f"{base}/api/batches", city)
            if listed is not None and listed.status_code == 200:
                for batch in listed.json():
                    if (batch["pending"] or batch["failed"]) and not batch["active_job"]:
                        await self._call("POST", f"{base}/api/batches/{batch['id']}/issue", city)
            await asyncio.sleep(self.timing.official_interval)
