#!/bin/sh
# One process of the PostgreSQL pair (docker-compose.ha.yml), as the postgres user:
#
#   khaibao-pg-node monitor   the pg_auto_failover monitor
#   khaibao-pg-node node      a data node (NODE_NAME, MONITOR_HOST); the first one to
#                             register becomes primary, the next one its synchronous standby
#
# Passwords come from secret files only: DB_PASSWORD_FILE (the role khaibao of the services)
# and REPLICATION_PASSWORD_FILE (pg_auto_failover's roles); nothing is printed.
set -eu
monitor_uri() {
    echo "postgres://autoctl_node@${MONITOR_HOST}:5432/pg_auto_failover?sslmode=require"
}
case "${1:?monitor or node}" in
monitor)
    if [ ! -f "$PGDATA/PG_VERSION" ]; then
        pg_autoctl create monitor --pgdata "$PGDATA" --hostname "$(hostname)" --pgport 5432 \
            --auth scram-sha-256 --ssl-self-signed
    fi
    pg_autoctl run --pgdata "$PGDATA" &
    keeper=$!
    until pg_isready -q -h 127.0.0.1 -p 5432; do sleep 1; done
    psql -d pg_auto_failover -qc "ALTER USER autoctl_node PASSWORD '$(cat "$REPLICATION_PASSWORD_FILE")'"
    wait "$keeper"
    ;;
node)
    if [ ! -f "$PGDATA/PG_VERSION" ]; then
        export PGPASSWORD="$(cat "$REPLICATION_PASSWORD_FILE")"
        # Replication quorum on and number_sync_standbys 0 (the default of a formation of
        # two): the primary's commits wait for the standby (synchronous_standby_names
        # 'ANY 1 (...)'); with the standby gone, the monitor lets the primary go on alone.
        pg_autoctl create postgres --pgdata "$PGDATA" --hostname "$NODE_NAME" --name "$NODE_NAME" --pgport 5432 \
            --monitor "$(monitor_uri)" --auth scram-sha-256 --ssl-self-signed --replication-quorum true \
            --candidate-priority 50
        pg_autoctl config set --pgdata "$PGDATA" replication.password "$PGPASSWORD"
        cat >> "$PGDATA/postgresql.conf" <<CONF
# khaibao: room for every replica's pools; WAL archived by pgBackRest (deploy/pgbackrest)
max_connections = 400
shared_buffers = 256MB
archive_mode = on
archive_command = 'pgbackrest --stanza=khaibao archive-push %p'
CONF
        echo "host all khaibao 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
    fi
    pg_autoctl run --pgdata "$PGDATA" &
    keeper=$!
    # On the primary: the services' role and their five databases (once; idempotent).
    until pg_isready -q -h 127.0.0.1 -p 5432; do sleep 1; done
    if [ "$(psql -Atqc 'SELECT pg_is_in_recovery()' postgres)" = "f" ]; then
        psql -qv ON_ERROR_STOP=1 postgres <<SQL
SELECT 'CREATE ROLE khaibao LOGIN CREATEDB' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'khaibao')\gexec
ALTER ROLE khaibao PASSWORD '$(cat "$DB_PASSWORD_FILE")';
SQL
        for db in intake provisioning declaration notification reporting; do
            psql -Atqc "SELECT 1 FROM pg_database WHERE datname = 'khaibao_$db'" postgres | grep -q 1 \
                || psql -qc "CREATE DATABASE khaibao_$db OWNER khaibao" postgres
        done
        pgbackrest --stanza=khaibao stanza-create || true
    fi
    wait "$keeper"
    ;;
*)
    echo "usage: khaibao-pg-node monitor|node" >&2
    exit 2
    ;;
esac
