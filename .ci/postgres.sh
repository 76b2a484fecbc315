#!/usr/bin/env bash
# Ensure a PostgreSQL server listens on 127.0.0.1:5432 with trust auth for user postgres over local TCP,
# then print the URL to put in VRESPONSES_TEST_PG_URL. Idempotent; returns at once when already serving.
# Expects a Debian-like machine and root (it may apt-get install postgresql and edits pg_hba.conf).
set -euo pipefail

HOST=127.0.0.1
PORT=5432
URL="postgresql://postgres@${HOST}:${PORT}/postgres"

# Fast path: already reachable without a password, nothing to do.
if command -v psql >/dev/null 2>&1 \
    && psql -w -h "$HOST" -p "$PORT" -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
    echo "$URL"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "postgres.sh: not reachable at $URL and not root, cannot set it up" >&2
    exit 1
fi

if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "postgres.sh: installing postgresql" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
fi

# Newest installed server version; the client-only package has no bin/postgres.
VERSION=$(ls -d /usr/lib/postgresql/*/bin/postgres | sed -E 's#.*/postgresql/([0-9]+)/bin/postgres#\1#' \
    | sort -n | tail -1)
CLUSTER=main

if ! pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c { found = 1 } END { exit !found }'; then
    echo "postgres.sh: creating cluster $VERSION/$CLUSTER" >&2
    pg_createcluster "$VERSION" "$CLUSTER" --port "$PORT" >&2
fi

CONF_DIR=/etc/postgresql/$VERSION/$CLUSTER
HBA=$CONF_DIR/pg_hba.conf
CONF=$CONF_DIR/postgresql.conf
changed=0

if ! grep -Eq "^[[:space:]]*listen_addresses[[:space:]]*=[[:space:]]*'localhost'" "$CONF"; then
    echo "listen_addresses = 'localhost'" >>"$CONF"
    changed=1
fi
if ! grep -Eq "^[[:space:]]*port[[:space:]]*=[[:space:]]*$PORT\b" "$CONF"; then
    echo "port = $PORT" >>"$CONF"
    changed=1
fi
# pg_hba.conf is first-match, so the trust line must precede the packaged scram/md5 lines.
TRUST_LINE="host all all 127.0.0.1/32 trust"
if ! grep -Eq "^[[:space:]]*host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust" "$HBA"; then
    tmp=$(mktemp)
    { echo "$TRUST_LINE"; cat "$HBA"; } >"$tmp"
    cat "$tmp" >"$HBA"
    rm -f "$tmp"
    changed=1
fi

status=$(pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c { print $4 }')
if [ "$status" != "online" ]; then
    pg_ctlcluster "$VERSION" "$CLUSTER" start >&2
elif [ "$changed" -eq 1 ]; then
    # listen_addresses and port only change on restart; pg_hba.conf would only need a reload.
    pg_ctlcluster "$VERSION" "$CLUSTER" restart >&2
fi

for _ in $(seq 1 50); do
    if psql -w -h "$HOST" -p "$PORT" -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
        echo "$URL"
        exit 0
    fi
    sleep 0.2
done
echo "postgres.sh: server did not become reachable at $URL" >&2
exit 1
