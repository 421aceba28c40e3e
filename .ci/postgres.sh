# Sourced by .ci/run: a throwaway PostgreSQL server for the shared-state tests.
# Installs the distribution's package if missing (as root), starts a server with
# its own data directory on a Unix socket only, exports RECONCILER_TEST_POSTGRES,
# and stops and removes it when the run ends.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$pg_bin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
if [ -n "$pg_bin" ]; then
  pg_dir=$(mktemp -d /tmp/reconciler-pg.XXXXXX)
  pg_as=""
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$pg_dir"  # PostgreSQL refuses to run as root
    pg_as="runuser -u postgres --"
  fi
  $pg_as "$pg_bin/initdb" -D "$pg_dir/data" -A trust -U reconciler >/dev/null
  $pg_as "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
    -o "-k $pg_dir -c listen_addresses= -p 54329 -c max_connections=200" start >/dev/null
  trap '$pg_as "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null; rm -rf "$pg_dir"' EXIT
  export RECONCILER_TEST_POSTGRES="postgresql://reconciler@/postgres?host=$pg_dir&port=54329"
  echo "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') for the tests: $RECONCILER_TEST_POSTGRES"
else
  echo "no PostgreSQL: the PostgreSQL tests will be skipped"
fi
