"""``khaibao keys reseal SERVICE``: every sealed column of a service rewritten under the
current field key (libs/common/fieldcrypt.py), and the start-up check of the key ring.

After ``khaibao keys rotate field`` new writes use the new key at once and the old rows
keep opening with the previous keys; resealing rewrites the old rows (and the rows stored
in clear before encryption existed) so that the previous keys can be dropped, and fills
every blind index column from its value (``--reindex``: all of them, after the index key
changed). Generic: the sealed columns are found in the service's SQLModel metadata
(``services/<service>/models.py``), so every service's sealed tables are covered.

Each batch (rows in primary key order) is one short transaction; the command can be
stopped and run again (a row already under the current key is skipped).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import SQLModel

from .fieldcrypt import FieldCryptError, KeyRing, is_sealed, sealed_columns


def service_metadata(service: str) -> list[sa.MetaData]:
    """The metadata of the tables ``services/<service>/models.py`` declares."""
    module = importlib.import_module(f"services.{service}.models")
    found: list[sa.MetaData] = []
    for obj in vars(module).values():
        if isinstance(obj, type) and issubclass(obj, SQLModel) and obj is not SQLModel:
            metadata = obj.metadata
            if metadata is not SQLModel.metadata and all(metadata is not m for m in found):
                found.append(metadata)
    return found


def sealed_tables(metadatas: list[sa.MetaData]) -> list[sa.Table]:
    return [table for metadata in metadatas for table in metadata.sorted_tables if sealed_columns(table)]


@dataclass
class _Plan:
    """One table as plain text columns (no type decorator in the way): the stored form."""

    table: sa.Table
    raw: sa.TableClause
    keys: list[str]
    sealed: list[tuple[str, str, tuple[str, str] | None]]  # (column, context, (index column, kind))

    @classmethod
    def of(cls, table: sa.Table) -> "_Plan":
        keys = [c.name for c in table.primary_key.columns]
        sealed = [(c.name, c.type.context, c.type.index) for c in sealed_columns(table)]
        indexes = [index[0] for _, _, index in sealed if index]
        raw = sa.table(table.name, *(sa.column(k, table.c[k].type) for k in keys),
                       *(sa.column(name, sa.String()) for name, _, _ in sealed),
                       *(sa.column(name, sa.String()) for name in indexes))
        return cls(table, raw, keys, sealed)

    def key_of(self, row) -> tuple:  # noqa: ANN001
        return tuple(row[k] for k in self.keys)

    def after(self, last: tuple | None):  # noqa: ANN201
        if last is None:
            return sa.true()
        if len(self.keys) == 1:
            return self.raw.c[self.keys[0]] > last[0]
        return sa.tuple_(*(self.raw.c[k] for k in self.keys)) > sa.tuple_(*last)

    def changes(self, ring: KeyRing, row, reindex: bool) -> dict:  # noqa: ANN001
        """The new stored values of ``row`` (empty: nothing to do)."""
        values = {}
        for name, context, index in self.sealed:
            stored = row[name]
            resealed = stored is not None and ring.needs_reseal(stored)
            if resealed:
                values[name] = ring.seal(ring.open(stored, context), context)
            if index is not None:
                column, kind = index
                if resealed or reindex or (stored is not None and row[column] is None):
                    expected = ring.index(ring.open(stored, context), kind) if stored is not None else None
                    if expected != row[column]:
                        values[column] = expected
        return values


async def reseal(database, ring: KeyRing, tables: list[sa.Table], *, batch: int = 500,  # noqa: ANN001
                 reindex: bool = False, echo: Callable[[str], None] = print) -> dict[str, int]:
    """Rewrite every row of ``tables`` stored in clear or under an old key; {table: rows rewritten}."""
    done: dict[str, int] = {}
    for table in tables:
        plan = _Plan.of(table)
        last, seen, rewritten = None, 0, 0
        while True:
            async with database.transaction() as session:
                rows = (await session.execute(
                    sa.select(plan.raw).where(plan.after(last))
                    .order_by(*(plan.raw.c[k] for k in plan.keys)).limit(batch))).mappings().all()
                for row in rows:
                    values = plan.changes(ring, row, reindex)
                    if values:
                        await session.execute(sa.update(plan.raw).where(
                            *(plan.raw.c[k] == row[k] for k in plan.keys)).values(**values))
                        rewritten += 1
            if not rows:
                break
            seen += len(rows)
            last = plan.key_of(rows[-1])
            echo(f"{table.name}: {seen} rows read, {rewritten} rewritten")
        done[table.name] = rewritten
        echo(f"{table.name}: done, {seen} rows, {rewritten} rewritten under key {ring.current_id}")
    return done


async def key_problems(database, ring: KeyRing, tables: list[sa.Table]) -> dict[str, list[str]]:  # noqa: ANN001
    """Whether ``ring`` fits what is stored: for each sealed column its newest sealed value
    (by primary key) is opened, and where the column has a blind index, the index of that
    value is compared with the stored one. ``{"field": [...], "index": [...]}``, a line per
    column that does not fit: the service must not start with the wrong keys (it would write
    rows nobody could read, or index them where no lookup finds them)."""
    problems: dict[str, list[str]] = {"field": [], "index": []}
    async with database.transaction(readonly=True) as session:
        for table in tables:
            plan = _Plan.of(table)
            for name, context, index in plan.sealed:
                column = plan.raw.c[name]
                wanted = [column] + ([plan.raw.c[index[0]]] if index else [])
                row = (await session.execute(
                    sa.select(*wanted).where(column.like("f1.%"))
                    .order_by(*(plan.raw.c[k].desc() for k in plan.keys)).limit(1))).first()
                if row is None or not is_sealed(row[0]):
                    continue
                try:
                    value = ring.open(row[0], context)
                except FieldCryptError as exc:
                    problems["field"].append(str(exc))
                    continue
                if index and row[1] is not None and ring.index(value, index[1]) != row[1]:
                    problems["index"].append(f"{table.name}.{index[0]}: the stored blind indexes were made with "
                                             "another index key")
    return problems
