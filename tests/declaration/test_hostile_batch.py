"""One hostile request cannot take the group commit away from the others.

A NUL in a name was accepted by the JSON API; PostgreSQL cannot store it, so the batch's
one statement failed and the committer wrote the batch again one request at a time: a
trickle of such requests removed batching for everyone. The text policy
(libs/common/text.py) now refuses it at the door (422, naming the field), so no batch
ever carries it. On both backends: good requests sent together with a hostile one are
all stored, in shared statements, and no batch falls back to one-by-one writes.
"""
from __future__ import annotations

import asyncio
import json

from prometheus_client import REGISTRY
from sqlalchemy import func, select

from services.declaration.models import Declaration

from .conftest import declaration, person

HOSTILE = ["Nguyễn\u0000Văn An", "Trần\ud800Bé", "Lê\u202eVăn Cư"]


def fallbacks_counted() -> float:
    return REGISTRY.get_sample_value("khaibao_declaration_batch_fallbacks_total", {"service": "declaration"}) or 0.0


async def test_a_hostile_request_never_sends_the_others_batch_one_by_one(declaration_on):
    service = declaration_on
    committer = service.runtime.extras["declaration"].committer
    code = service.venues["main"].code
    fallbacks, counted = committer.fallbacks, fallbacks_counted()
    # The writers are held until every request has reached the committer: the batches
    # are then what a busy server writes (all of them together), whatever this client's pace.
    gate, statements = asyncio.Event(), []
    for writer in committer.writers:
        async def held(batch, write=writer.write):  # noqa: ANN001, ANN202
            statements.append(len(batch))
            await gate.wait()
            return await write(batch)

        writer.write = held
    for hostile in HOSTILE:
        gate.clear()
        statements.clear()
        good = [declaration(code, person(full_name=f"Người Thứ {chr(65 + i)}")) for i in range(20)]
        bad = declaration(code, person(full_name=hostile))
        # As JSON escapes ("\\u0000", "\\ud800"), the way an attacker's client sends them.
        sent = [asyncio.create_task(service.client.post("/api/declarations", content=json.dumps(b).encode(),
                                                        headers={"content-type": "application/json"}))
                for b in [*good[:10], bad, *good[10:]]]
        while sum(statements) + len(committer.queue) < 20:
            await asyncio.sleep(0.01)
        gate.set()
        responses = await asyncio.gather(*sent)
        refused = responses[10]
        assert refused.status_code == 422, (hostile, refused.status_code, refused.text[:300], statements)
        errors = refused.json()["errors"]
        assert [e["field"] for e in errors] == ["people.0.full_name"], errors
        assert "Họ và tên" in errors[0]["message"], errors
        assert [r.status_code for r in responses[:10] + responses[11:]] == [201] * 20
        # One statement per writer that took a batch (the first request may have been taken alone).
        assert sum(statements) == 20 and len(statements) <= len(committer.writers) + 1, statements
    assert committer.fallbacks == fallbacks and fallbacks_counted() == counted, "a batch was written one by one"
    async with service.runtime.database.transaction(readonly=True) as session:
        assert (await session.execute(select(func.count()).select_from(Declaration))).scalar_one() == 60
