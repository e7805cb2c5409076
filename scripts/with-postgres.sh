#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server: installs Debian's postgresql when missing, creates a cluster
# in a temporary folder, starts it on a free loopback port (trust authentication, no socket outside the folder),
# exports MASS_TEST_POSTGRES_URL for the command, and stops the server and removes the folder afterwards, whatever
# the command's outcome. Usage: scripts/with-postgres.sh COMMAND [ARG...]
set -euo pipefail

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "installing Debian's postgresql"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi

# initdb and postgres refuse to run as root: run them as the package's postgres user.
as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

dir=$(mktemp -d /tmp/mass-pg.XXXXXX)
chmod 755 "$dir"
[ "$(id -u)" = 0 ] && chown postgres: "$dir"

stop() {
    as_postgres "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap stop EXIT

as_postgres "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log"; exit 1; }
# A random high port; another is tried if it is taken.
started=""
for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 30000))
    if as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start >/dev/null; then
        started=1
        break
    fi
done
[ -n "$started" ] || { cat "$dir/server.log"; exit 1; }

export MASS_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $dir)"
"$@"
