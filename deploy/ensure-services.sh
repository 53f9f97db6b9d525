#!/usr/bin/env bash
# Make sure what the test suite talks to is there: Mosquitto on 127.0.0.1:1883, PostgreSQL on
# 127.0.0.1:5432 (trust auth for user postgres) and Chromium for the browser test.
# Starts a service that is installed but stopped; installs the Debian package when running as root.
# Fails with a clear message otherwise: tests never skip a missing service.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ensure_mosquitto() {
  port_open 1883 && return 0
  if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "ensure-services: installing mosquitto (Debian package)"
      apt-get install -y -q mosquitto >/dev/null
    else
      echo "ensure-services: Mosquitto is not installed and this is not root; install it: apt-get install mosquitto" >&2
      return 1
    fi
  fi
  echo "ensure-services: starting Mosquitto on 127.0.0.1:1883"
  /usr/sbin/mosquitto -d -c /etc/mosquitto/mosquitto.conf || true
  for _ in $(seq 50); do port_open 1883 && return 0; sleep 0.1; done
  echo "ensure-services: Mosquitto did not come up on 127.0.0.1:1883; see /var/log/mosquitto/" >&2
  return 1
}

install_package() {
  if [ "$(id -u)" = 0 ]; then
    echo "ensure-services: installing $1 (Debian package)"
    apt-get install -y -q "$1" >/dev/null
  else
    echo "ensure-services: $1 is not installed and this is not root; install it: apt-get install $1" >&2
    return 1
  fi
}

ensure_postgres() {
  port_open 5432 && return 0
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    install_package postgresql
  fi
  echo "ensure-services: starting PostgreSQL on 127.0.0.1:5432"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 100); do port_open 5432 && return 0; sleep 0.1; done
  echo "ensure-services: PostgreSQL did not come up on 127.0.0.1:5432" >&2
  return 1
}

ensure_chromium() {
  [ -x /usr/bin/chromium ] || install_package chromium
}

ensure_mosquitto
ensure_postgres
ensure_chromium
