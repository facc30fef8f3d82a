#!/usr/bin/env bash
# Makes sure the services the tests use answer on 127.0.0.1: PostgreSQL, Redis
# and NATS with JetStream.
#
# In CI (CI=true) it starts the ones that are down and installs missing ones
# with apt-get; a PostgreSQL it installs gets trust authentication for local
# TCP connections, as on the CI machines. Anywhere else it changes nothing on
# the machine (no install, no start, no pg_hba.conf): it says what is missing,
# how to start it, and fails. Idempotent; safe to run before every test run.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=${PLEXICA_TEST_PG_PORT:-5432}
REDIS_PORT=${PLEXICA_TEST_REDIS_PORT:-6379}
NATS_PORT=${PLEXICA_TEST_NATS_PORT:-4222}
IN_CI=false
[ "${CI:-}" = true ] && IN_CI=true
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"

say() { echo "ensure-services: $*" >&2; }
missing=()
# Outside CI: remember what is missing and the command that fixes it.
report() { missing+=("$1"$'\n'"    $2"); }

apt_updated=0
apt_install() {
  say "installing $*"
  [ "$apt_updated" = 1 ] || { $SUDO apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

wait_for() { # seconds, check command…
  local tries=$(($1 * 2))
  shift
  for _ in $(seq 1 "$tries"); do "$@" && return 0; sleep 0.5; done
  return 1
}

pg_up() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; }
# Servers the tests are pointed at elsewhere are only checked, never started.
if [ -n "${PLEXICA_TEST_PG_URL:-}" ]; then
  pg_isready -q -d "$PLEXICA_TEST_PG_URL" || { say "PostgreSQL at PLEXICA_TEST_PG_URL is not answering"; exit 1; }
  pg_up() { true; }
fi
if [ -n "${PLEXICA_TEST_REDIS_URL:-}" ]; then
  redis-cli -u "$PLEXICA_TEST_REDIS_URL" ping >/dev/null 2>&1 || { say "Redis at PLEXICA_TEST_REDIS_URL is not answering"; exit 1; }
  redis_up() { true; }
fi
# NATS greets every client with an INFO line; it says whether JetStream is on.
nats_info() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$NATS_PORT && head -n 1 <&3" 2>/dev/null; }
nats_up() { nats_info | grep -q '"jetstream":true'; }

# PostgreSQL
pg_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1; }
if ! pg_up; then
  if ! command -v pg_ctlcluster >/dev/null || [ -z "$(pg_version)" ]; then
    if [ "$IN_CI" = true ]; then
      apt_install postgresql postgresql-client
      # tests connect over TCP as postgres without a password, as on the CI machines
      hba=/etc/postgresql/$(pg_version)/main/pg_hba.conf
      $SUDO sed -i -E 's/^(host\s+all\s+all\s+127\.0\.0\.1\/32\s+)\S+/\1trust/; s/^(host\s+all\s+all\s+::1\/128\s+)\S+/\1trust/' "$hba"
    else
      report "PostgreSQL is not installed (the tests need it on $PG_HOST:$PG_PORT, user postgres without a password)" \
        "apt-get install postgresql, or set PLEXICA_TEST_PG_URL=postgres://user:password@host:port/postgres to use another server"
    fi
  fi
  if [ -n "$(pg_version)" ]; then
    if [ "$IN_CI" = true ]; then
      say "starting PostgreSQL $(pg_version)"
      $SUDO pg_ctlcluster --skip-systemctl-redirect "$(pg_version)" main start || true
      wait_for 30 pg_up || { say "PostgreSQL did not come up on $PG_HOST:$PG_PORT"; exit 1; }
    else
      report "PostgreSQL $(pg_version) is not answering on $PG_HOST:$PG_PORT" \
        "pg_ctlcluster --skip-systemctl-redirect $(pg_version) main start"
    fi
  fi
fi

# Redis
if ! redis_up; then
  if ! command -v redis-server >/dev/null; then
    if [ "$IN_CI" = true ]; then
      apt_install redis-server
    else
      report "Redis is not installed (the tests need it on 127.0.0.1:$REDIS_PORT)" "apt-get install redis-server"
    fi
  fi
  redis_start=(redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no
    --dir /var/lib/redis --logfile /var/log/redis/ci.log)
  if command -v redis-server >/dev/null; then
    if [ "$IN_CI" = true ]; then
      say "starting Redis"
      mkdir -p /var/lib/redis /var/log/redis
      "${redis_start[@]}"
      wait_for 10 redis_up || { say "Redis did not come up on 127.0.0.1:$REDIS_PORT"; exit 1; }
    else
      report "Redis is not answering on 127.0.0.1:$REDIS_PORT" \
        "mkdir -p /var/lib/redis /var/log/redis && redis-server --daemonize yes --bind 127.0.0.1 --port $REDIS_PORT --save '' --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log"
    fi
  fi
fi

# NATS with JetStream
if ! nats_up; then
  if [ -n "$(nats_info)" ]; then
    # someone else's server: never restart it, in CI or not
    say "NATS on 127.0.0.1:$NATS_PORT runs without JetStream: stop it and start it again with -js, e.g. start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p $NATS_PORT -js -sd /var/lib/nats-server -l /var/log/nats-server.log"
    exit 1
  fi
  if [ ! -x /usr/sbin/nats-server ]; then
    if [ "$IN_CI" = true ]; then
      apt_install nats-server
    else
      report "NATS is not installed (the tests need it with JetStream on 127.0.0.1:$NATS_PORT)" "apt-get install nats-server"
    fi
  fi
  nats_start=(start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server --
    -a 127.0.0.1 -p "$NATS_PORT" -js -sd /var/lib/nats-server -l /var/log/nats-server.log)
  if [ -x /usr/sbin/nats-server ]; then
    if [ "$IN_CI" = true ]; then
      say "starting NATS"
      mkdir -p /var/lib/nats-server
      $SUDO "${nats_start[@]}"
      wait_for 10 nats_up || { say "NATS did not come up with JetStream on 127.0.0.1:$NATS_PORT"; exit 1; }
    else
      report "NATS is not answering on 127.0.0.1:$NATS_PORT" "mkdir -p /var/lib/nats-server && ${nats_start[*]}"
    fi
  fi
fi

if [ ${#missing[@]} -gt 0 ]; then
  say "the tests need services that are not running here; this script changes a machine only when CI=true"
  for m in "${missing[@]}"; do echo "  - $m" >&2; done
  say "or let it install and start them as CI does (it sets trust authentication for local TCP on a PostgreSQL it installs): CI=true bash scripts/ensure-services.sh"
  exit 1
fi
say "PostgreSQL, Redis and NATS (JetStream) are up"
