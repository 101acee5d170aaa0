"""The CPU of encryption at rest for one declaration, measured alone (no server, no I/O).

    python -m bench.fieldcrypt

What the hot path adds per declaration (services/declaration/writers.py): the six personal
fields sealed (AES-256-GCM, a fresh nonce each), the ID number's and phone's blind indexes
(HMAC-SHA256), and its ``declaration.submitted`` payload sealed in the outbox and opened
by the relay. bench/declare.py --encryption on off measures the same in the whole service.
"""
from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, date, datetime

from libs.common.fieldcrypt import KeyRing, register
from libs.common.outbox import PAYLOAD_CONTEXT


def _row() -> dict:
    now = datetime.now(UTC)
    return {"id": uuid.uuid4(), "submission_id": uuid.uuid4(), "member": 0, "venue_id": uuid.uuid4(),
            "venue_code": "CT7K2M9Q", "unit_id": uuid.uuid4(), "commune_path": "79/787/27664", "submitted_at": now,
            "valid_until": now, "channel": "self", "declared_by": None, "full_name": "Nguyễn Thị Thu Hà",
            "id_type": "cccd", "id_number": "079301004567", "birth_date": date(2001, 4, 3), "birth_year": 2001,
            "gender": "female", "nationality": "VN", "phone": "0912345678", "province_code": "79",
            "district_code": "787", "commune_code": "27664", "street": "45 Duyên Hải", "symptoms": "",
            "symptom_other": None, "exposures": "", "vaccine_doses": 2, "result": "green", "reasons": "",
            "rule_version": "v1"}


def measure(count: int = 20_000) -> dict[str, float]:
    """µs of CPU per declaration: the row sealed and indexed, the payload sealed and opened."""
    keys = KeyRing([os.urandom(32), os.urandom(32)], os.urandom(32))
    register("declaration", keys)
    from services.declaration.writers import seal_declaration

    row = _row()
    payload = b'{"id":"' + b"0" * 36 + b'","type":"declaration.submitted","data":{' + b"x" * 600 + b"}}"
    figures = {}
    start = time.process_time()
    for _ in range(count):
        seal_declaration(row)
    figures["row: 6 fields sealed + 2 blind indexes"] = 1e6 * (time.process_time() - start) / count
    start = time.process_time()
    for _ in range(count):
        keys.open_bytes(keys.seal_bytes(payload, PAYLOAD_CONTEXT), PAYLOAD_CONTEXT)
    figures["outbox payload sealed + opened by the relay"] = 1e6 * (time.process_time() - start) / count
    figures["total per declaration"] = sum(figures.values())
    return figures


def print_micro() -> None:
    print("\nEncryption at rest alone, CPU µs per declaration (python -m bench.fieldcrypt):")
    for name, value in measure().items():
        print(f"  {name}: {value:.1f}")


if __name__ == "__main__":
    print_micro()
