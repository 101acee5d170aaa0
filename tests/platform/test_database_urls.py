"""Database URLs (issue 19): one server, or a primary and its standby as a multi-host URL.

libpq's form ``host1:port1,host2:port2`` with ``target_session_attrs=read-write`` is what
operators write; SQLAlchemy's URL parser refuses it, asyncpg takes lists of hosts and ports.
``libs/common/db.py`` reads both forms, keeps the password out of renderings, and a
failover under way counts as the database restarting (503, retried), not as a crash.
"""
from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from libs.common.consumer import is_transient
from libs.common.db import asyncpg_options, describe_hosts, is_sqlite, parse_url, with_password

MULTI = "postgresql+asyncpg://khaibao:s%40cret@db-a:5432,db-b:5433/khaibao_declaration?target_session_attrs=read-write"


def test_a_multi_host_url_gives_asyncpg_every_host_and_the_session_attribute() -> None:
    options = asyncpg_options(MULTI)
    assert options == {"user": "khaibao", "password": "s@cret", "database": "khaibao_declaration",
                       "host": ["db-a", "db-b"], "port": [5432, 5433], "target_session_attrs": "read-write"}
    assert describe_hosts(MULTI) == "db-a:5432,db-b:5433/khaibao_declaration"


def test_sqlalchemy_s_own_multi_host_form_and_a_single_host_read_the_same() -> None:
    sqlalchemy_form = "postgresql+asyncpg://u:p@/d?host=db-a:5432&host=db-b&target_session_attrs=read-write"
    assert asyncpg_options(sqlalchemy_form)["host"] == ["db-a", "db-b"]
    assert asyncpg_options(sqlalchemy_form)["port"] == [5432, 5432]
    assert asyncpg_options("postgresql+asyncpg://u:p@db:6000/d") == {
        "user": "u", "password": "p", "database": "d", "host": "db", "port": 6000}
    assert not is_sqlite(MULTI) and is_sqlite("sqlite+aiosqlite:////tmp/a,b/x.db")
    assert parse_url("sqlite+aiosqlite:////tmp/a,b/x.db").database == "/tmp/a,b/x.db"


def test_the_password_file_replaces_the_url_s_and_never_shows() -> None:
    url = with_password("postgresql+asyncpg://khaibao@db-a:5432,db-b:5432/d?target_session_attrs=read-write",
                        "from-the-file")
    assert url.password == "from-the-file"
    assert "from-the-file" not in repr(url) and "from-the-file" not in str(url)
    assert asyncpg_options(url)["host"] == ["db-a", "db-b"]
    assert asyncpg_options(MULTI, "other")["password"] == "other"


@pytest.mark.parametrize("error", [
    asyncpg.exceptions.TargetServerAttributeNotMatched("no read-write host"),
    sa_exc.DBAPIError("INSERT", {}, asyncpg.exceptions.TargetServerAttributeNotMatched("no read-write host")),
])
def test_no_read_write_node_yet_is_transient(error: BaseException) -> None:
    assert is_transient(error)


def test_a_connection_whose_node_became_a_standby_is_transient() -> None:
    class ReadOnly(Exception):
        sqlstate = "25006"

    assert is_transient(sa_exc.DBAPIError("INSERT", {}, ReadOnly("read-only transaction")))
    assert not is_transient(ValueError("a bug"))
