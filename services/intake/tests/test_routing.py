"""Routing (circular point 1.2): every unit type reaches the right focal point."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from libs.common.outbox import open_payload, outbox
from services.intake.routing import COMMUNE, DISTRICT, UNIT_TYPES, unit_type_by_label
from services.intake.schemas import RegistrationIn
from services.intake.service import RegistrationRejected, submit_registration

from .conftest import BEN_NGHE, CAN_GIO, CAN_THANH, QUAN_1

DISTRICT_TYPES = {"state_agency", "party_agency", "socio_political", "district_board", "public_service"}


def body(unit_type: str, commune: str = "27664", **over) -> RegistrationIn:  # noqa: ANN003
    return RegistrationIn(**{"unit_name": f"Đơn vị {unit_type}", "unit_type": unit_type, "address": "1 Đường Số 1",
                             "commune_code": commune, "contact_name": "Nguyễn Văn An", "contact_phone": "0909123456",
                             **over})


def test_the_circular_split_is_the_data():
    assert {code for code, t in UNIT_TYPES.items() if t.receiver == DISTRICT} == DISTRICT_TYPES
    assert {t.receiver for t in UNIT_TYPES.values()} == {DISTRICT, COMMUNE}
    # The template's drop-down shows labels; both languages and the code are understood.
    for unit_type in UNIT_TYPES.values():
        for key in (unit_type.code, unit_type.label_vi, unit_type.label_en, unit_type.label_vi.upper()):
            assert unit_type_by_label(key) is unit_type


@pytest.mark.parametrize("unit_type", sorted(UNIT_TYPES))
@pytest.mark.parametrize("commune,district", [("27664", CAN_GIO), ("26740", QUAN_1)])
async def test_every_unit_type_is_routed(database, tree, unit_type, commune, district):
    async with database.transaction() as session:
        registration = await submit_registration(session, tree, body(unit_type, commune), deadline=None)
    commune_path = CAN_THANH if commune == "27664" else BEN_NGHE
    assert registration.commune_path == commune_path
    assert registration.district_path == district
    if unit_type in DISTRICT_TYPES:
        assert (registration.receiver, registration.receiver_path) == (DISTRICT, district)
    else:
        assert (registration.receiver, registration.receiver_path) == (COMMUNE, commune_path)
    # The event says who receives it, for the notification inbox and reporting.
    async with database.transaction(readonly=True) as session:
        payloads = (await session.execute(select(outbox.c.payload))).scalars().all()
    assert len(payloads) == 1
    assert f'"receiver":"{registration.receiver}"'.encode() in open_payload(payloads[0])


@pytest.mark.parametrize("code", ["79", "787", "99999", "27664x"[:5] + "9"])
async def test_only_communes_receive(database, tree, code):
    with pytest.raises(RegistrationRejected):
        async with database.transaction() as session:
            await submit_registration(session, tree, body("school", code), deadline=None)


async def test_unknown_type_is_refused(database, tree):
    with pytest.raises(RegistrationRejected) as refused:
        async with database.transaction() as session:
            await submit_registration(session, tree, body("casino"), deadline=None)
    assert "Loại đơn vị" in str(refused.value)
