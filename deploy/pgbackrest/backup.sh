#!/bin/sh
# A scheduled pgBackRest backup of the khaibao stanza, then retention, then the record
# Prometheus alerts on (BackupTooOld).
#
#   deploy/pgbackrest/backup.sh full    # weekly
#   deploy/pgbackrest/backup.sh incr    # daily
#
# Writes khaibao_backup_last_success_timestamp_seconds{type} for node_exporter's textfile
# collector ($TEXTFILE_DIR, default /var/lib/prometheus/node-exporter) after a success only.
set -eu
TYPE="${1:?full or incr}"
TEXTFILE_DIR="${TEXTFILE_DIR:-/var/lib/prometheus/node-exporter}"
RETENTION_DAYS="${KHAIBAO_DATA_RETENTION_DAYS:-21}"

pgbackrest --stanza=khaibao backup --type="$TYPE"
# pgBackRest's own expiry (repo1-retention-full days), then the retention rule of
# personal data (tests/infra/pgbackrest_local.py `expired`): every set whose full backup
# is older than the retention goes, with its incrementals.
pgbackrest --stanza=khaibao expire
cutoff=$(( $(date +%s) - RETENTION_DAYS * 86400 ))
pgbackrest --stanza=khaibao info --output=json | python3 -c '
import json, sys
cutoff = int(sys.argv[1])
backups = json.load(sys.stdin)[0]["backup"]
print("\n".join(b["label"] for b in backups if b["type"] == "full" and b["timestamp"]["stop"] < cutoff))
' "$cutoff" | while read -r label; do
    [ -n "$label" ] && pgbackrest --stanza=khaibao expire --set="$label"
done

mkdir -p "$TEXTFILE_DIR"
tmp="$TEXTFILE_DIR/khaibao_backup_$TYPE.prom.$$"
cat > "$tmp" <<METRICS
# HELP khaibao_backup_last_success_timestamp_seconds When the last successful pgBackRest backup of this type ended.
# TYPE khaibao_backup_last_success_timestamp_seconds gauge
khaibao_backup_last_success_timestamp_seconds{type="$TYPE"} $(date +%s)
METRICS
mv "$tmp" "$TEXTFILE_DIR/khaibao_backup_$TYPE.prom"
