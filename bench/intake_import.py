"""How long a filled list template takes to import, through the real intake service.

    python -m bench.intake_import                     # 1,000, 5,000 and 10,000 rows on SQLite
    python -m bench.intake_import --rows 5000 --runs 3
    python -m bench.intake_import --database-url postgresql+asyncpg://u:p@127.0.0.1:5432/bench_intake

The intake app runs in this process behind uvicorn on a loopback port, with its worker
(as ``khaibao serve intake`` does); a district focal point uploads the file over HTTP and
polls the progress endpoint until the import is done, as the progress page does. Each
row becomes a registration and its ``intake.registration.submitted`` event in the
outbox, in one transaction. Prints a Markdown table for the README.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

COMMUNES = ["Thị trấn Cần Thạnh", "Xã Bình Khánh", "Xã An Thới Đông", "Xã Long Hòa", "Xã Lý Nhơn",
            "Xã Tam Thôn Hiệp", "Xã Thạnh An"]
TYPES = ["Công ty, doanh nghiệp", "Cơ sở sản xuất, kinh doanh", "Trường học", "Chợ", "Siêu thị",
         "Cửa hàng cung cấp dịch vụ thiết yếu", "Cơ quan nhà nước"]


def filled_list(rows: int, salt: int) -> bytes:
    """``rows`` units of Cần Giờ; ``salt`` (four digits) keeps tax codes apart between runs."""
    from openpyxl import load_workbook

    from libs.common.adminunits import load_tree
    from services.intake.excel.template import build_template

    book = load_workbook(io.BytesIO(build_template(load_tree(None, "79").get("79/787"), max_rows=max(rows, 10))))
    sheet = book.worksheets[0]
    for i in range(rows):
        n = f"{salt:04d}{i:06d}"
        sheet.append([i + 1, f"Đơn vị thử nghiệm số {n}", TYPES[i % len(TYPES)], f"{i % 500 + 1} Đường Rừng Sác, ấp {i % 9}",
                      COMMUNES[i % len(COMMUNES)], "Huyện Cần Giờ", n, "Nguyễn Văn An", "Giám đốc",
                      f"09{i:08d}", f"donvi{n}@example.com", 1 + i % 4, None, None])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def measure(rows_list: list[int], runs: int, database_url: str | None) -> list[dict]:
    import uvicorn

    from libs.common.auth import Role
    from services.intake.app import create_app
    from tests.services.conftest import Minter, build_settings, make_keys

    data = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    keys = make_keys(data)
    overrides = {"worker_poll_interval": 0.2, "max_import_rows": max(rows_list), "log_level": "WARNING",
                 "sqlite_synchronous": "FULL"}
    if database_url:
        overrides["database_url"] = database_url
    settings = build_settings("intake", keys, **overrides)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None,
                                           access_log=False))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    auth = Minter(keys.private).headers(Role.DISTRICT_FOCAL, "79/787")
    results = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            for rows in rows_list:
                for run in range(runs):
                    content = await asyncio.to_thread(filled_list, rows, random.randrange(10_000))
                    started = time.perf_counter()
                    response = await client.post("/api/imports", headers=auth, files={"file": ("ds.xlsx", content)})
                    uploaded = time.perf_counter() - started
                    response.raise_for_status()
                    upload_id = response.json()["id"]
                    seen_phases: dict[str, float] = {}
                    polls = 0
                    while True:
                        state = (await client.get(f"/api/imports/{upload_id}", headers=auth)).json()
                        polls += 1
                        if state["phase"] and state["phase"] not in seen_phases:
                            seen_phases[state["phase"]] = time.perf_counter() - started
                        if state["status"] not in ("queued", "validating", "importing"):
                            break
                        await asyncio.sleep(0.1)
                    total = time.perf_counter() - started
                    assert state["status"] == "imported", state
                    results.append({"rows": rows, "size": len(content), "upload": uploaded, "total": total,
                                     "checked": seen_phases.get("importing", total), "polls": polls,
                                     "phases": len(seen_phases)})
    finally:
        server.should_exit = True
        await serving
    return results


def table(results: list[dict], database: str) -> str:
    lines = [f"Intake list import ({database}, embedded bus; {os.cpu_count()} CPUs shared with other work)", "",
             "| rows | file | upload answered | checked (read + every row) | imported (total) | rows/s | progress updates seen |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for rows in sorted({r["rows"] for r in results}):
        runs = [r for r in results if r["rows"] == rows]
        total = statistics.median(r["total"] for r in runs)
        lines.append(
            f"| {rows:,} | {statistics.median(r['size'] for r in runs) / 1024:,.0f} KiB "
            f"| {statistics.median(r['upload'] for r in runs) * 1000:,.0f} ms "
            f"| {statistics.median(r['checked'] for r in runs):.1f} s | {total:.1f} s | {rows / total:,.0f} "
            f"| {statistics.median(r['polls'] for r in runs):.0f} |")
    lines.append("")
    lines.append(f"Median of {len(results) // len({r['rows'] for r in results})} run(s) per size.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[1000, 5000, 10000])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    for name in list(os.environ):
        if name.startswith("KHAIBAO_"):
            del os.environ[name]
    results = asyncio.run(measure(args.rows, args.runs, args.database_url))
    print(table(results, "PostgreSQL" if args.database_url else "SQLite"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
