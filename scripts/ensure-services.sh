#!/usr/bin/env bash
# Makes sure the PostgreSQL and Redis that the tests use are running on
# 127.0.0.1: starts them when they are down, installs them with apt-get when
# they are missing. Idempotent; safe to run before every test run.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=${PLEXICA_TEST_PG_PORT:-5432}
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"

apt_install() {
  echo "ensure-services: installing $*" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

pg_up() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; }

if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  apt_install postgresql postgresql-client
  fresh_install=1
fi
if ! pg_up; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if [ "${fresh_install:-0}" = 1 ]; then
    # tests connect over TCP as postgres without a password, as on the CI machines
    hba=/etc/postgresql/$version/main/pg_hba.conf
    $SUDO sed -i -E 's/^(host\s+all\s+all\s+127\.0\.0\.1\/32\s+)\S+/\1trust/; s/^(host\s+all\s+all\s+::1\/128\s+)\S+/\1trust/' "$hba"
  fi
  echo "ensure-services: starting PostgreSQL $version" >&2
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  pg_up || { echo "ensure-services: PostgreSQL did not come up on $PG_HOST:$PG_PORT" >&2; exit 1; }
fi

if ! command -v redis-server >/dev/null; then
  apt_install redis-server
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "ensure-services: starting Redis" >&2
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 20); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
echo "ensure-services: PostgreSQL and Redis are up" >&2
