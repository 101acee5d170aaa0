"""The bad-input catalogue's shared parts: hostile inputs over the public forms, the
sign-in, the consoles, the JSON APIs and the uploads. Each is a clear 4xx (a message, never
a 500), nothing is stored, and text that is accepted is shown escaped and exported without
formulas.

The catalogue is in three files, by what the input goes through:

- test_bad_input_text.py: hostile text in the typed fields (refused naming the field) and
  injection payloads (kept as text, shown escaped, exported without formulas);
- test_bad_input_requests.py: malformed bodies, Excel uploads, QR payloads, paging;
- test_bad_input_credentials.py: forged and replayed tokens, CSRF, brute force.

Data-driven: every entry of the catalogue is one input tried; each file counts its own and
its last test writes the total to the figures table (bench/reliability.py adds them up).
Each file imports the ``system`` fixture: the five services, once per file.
"""
from __future__ import annotations

from pathlib import Path

import pytest_asyncio
from sqlalchemy import func, select

from .conftest import demo_system, record_figure

HTML = {"accept": "text/html"}
JSON = {"accept": "application/json"}
MB = 1024 * 1024


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def system(tmp_path_factory):
    async with demo_system(tmp_path_factory.mktemp("bad-input") / "data") as running:
        running.extra["tried"] = 0
        yield running


async def count(system, service: str, model) -> int:  # noqa: ANN001
    async with system.runtime(service).database.transaction(readonly=True) as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


def clear_4xx(response, what: str) -> None:  # noqa: ANN001
    assert 400 <= response.status_code < 500, f"{what}: {response.status_code} {response.text[:200]}"
    text = response.text
    assert text.strip(), f"{what}: an empty answer"
    if response.headers.get("content-type", "").startswith("application/json"):
        detail = response.json().get("detail")
        assert detail, f"{what}: no detail"
    # No echo of a secret or of raw hostile markup
    assert "<script>alert(1)</script>" not in text, what


async def demo_venue_code(system) -> str:  # noqa: ANN001
    from services.provisioning.models import Venue

    async with system.runtime("provisioning").database.transaction(readonly=True) as session:
        return (await session.execute(select(Venue))).scalars().first().code


def record_total(system, test_file: str, *, at_least: int) -> None:  # noqa: ANN001
    """The inputs one file of the catalogue tried, to the figures table; at least ``at_least``
    (the catalogue does not shrink unnoticed)."""
    tried = system.extra["tried"]
    record_figure("bad input", kind="total", file=Path(test_file).name, tried=tried, server_errors=0, stored=0)
    assert tried >= at_least, tried
