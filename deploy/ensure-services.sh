#!/usr/bin/env bash
# Make sure the services the test suite talks to are up: Mosquitto on 127.0.0.1:1883.
# Starts it when it is installed but stopped; installs the Debian package when running as root.
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

ensure_mosquitto
