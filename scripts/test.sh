#!/usr/bin/env bash
# Set up everything fleetwatch's tests need on a fresh Debian machine, then lint, type-check,
# check import contracts and run the whole test suite against real services.
#
#   scripts/test.sh            # everything
#   scripts/test.sh -k store   # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
apt_updated=0
need_pkg() {  # need_pkg COMMAND PACKAGE...
  if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$1" ] && [ ! -x "/usr/bin/$1" ]; then
    shift
    if [ "$apt_updated" = 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
    echo "==> installing $*"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
  fi
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# -- system packages ---------------------------------------------------------------------------
need_pkg influxd influxdb            # Debian's InfluxDB 1.6; tests start their own influxd
need_pkg chromium chromium           # dashboard browser tests
need_pkg chromedriver chromium-driver
need_pkg redis-server redis-server
need_pkg mosquitto mosquitto
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  need_pkg psql postgresql
  fresh_pg=1
fi
# The Debian package starts influxd as a service on :8086 where systemd runs; tests use their own.

# -- services ------------------------------------------------------------------------------------
if ! port_open 5432; then
  echo "==> starting PostgreSQL"
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if [ "${fresh_pg:-0}" = 1 ]; then  # a cluster we just installed: trust loopback, as tests expect
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    $SUDO sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  fi
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi
if ! port_open 6379; then
  echo "==> starting Redis"
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
if ! port_open 1883; then
  echo "==> starting Mosquitto"
  $SUDO mosquitto -d -c /etc/mosquitto/mosquitto.conf
fi
for _ in $(seq 1 50); do port_open 5432 && port_open 6379 && port_open 1883 && break; sleep 0.2; done

# -- the project -----------------------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev]'

echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check . >/dev/null || { .venv/bin/ruff format --diff . | head -50; exit 1; }
echo "==> mypy"
.venv/bin/mypy fleetwatch models collectors dashboards
echo "==> import contracts"
.venv/bin/lint-imports
echo "==> pytest"
.venv/bin/python -m pytest "$@"
