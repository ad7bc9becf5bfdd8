#!/bin/sh
# Kamailio's entry point in deploy/compose.yaml: build the subscriber table from ./subscribers
# (user:domain:password lines, no quotes in them), then run Kamailio in the foreground, logging
# to stderr. "start.sh --check" only checks the configuration (kamailio -c).
# KAMAILIO_CFG, KAMAILIO_DB and KAMAILIO_SUBSCRIBERS override the paths (the tests use them).
set -eu
cfg=${KAMAILIO_CFG:-/etc/kamailio/kamailio.cfg}
db=${KAMAILIO_DB:-/var/lib/kamailio/kamailio.sqlite}
subscribers=${KAMAILIO_SUBSCRIBERS:-/etc/kamailio/subscribers}
schema=/usr/share/kamailio/db_sqlite
# Debian's multiarch module folder (x86_64-linux-gnu, aarch64-linux-gnu, ...).
modules=$(ls -d /usr/lib/*/kamailio/modules | head -n 1)

# A fresh table each start: registrations and presence live in memory anyway.
rm -f "$db" "$db-journal" "$db-wal" "$db-shm"
cat "$schema/standard-create.sql" "$schema/auth_db-create.sql" "$schema/presence-create.sql" \
    | sqlite3 "$db"
grep -v '^#' "$subscribers" | while IFS=: read -r user domain password; do
    [ -n "$user" ] || continue
    sqlite3 "$db" "INSERT INTO subscriber (username, domain, password)
                   VALUES ('$user', '$domain', '$password');"
done

if [ "${1:-}" = "--check" ]; then
    exec kamailio -c -f "$cfg" -L "$modules"
fi
mkdir -p /run/kamailio
chown -R kamailio:kamailio "$(dirname "$db")" /run/kamailio
exec kamailio -DD -E -f "$cfg" -L "$modules" -Y /run/kamailio -u kamailio -g kamailio -m 64 -M 8
