"""Throwaway MQTT brokers for tests that stop, restart or reconfigure one (the shared broker stays up)."""

from __future__ import annotations

import random
import socket
import subprocess
import time
from pathlib import Path

import pytest

SHARED_BROKER = ("127.0.0.1", 1883)
MOSQUITTO = "/usr/sbin/mosquitto"
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def free_port() -> int:
    """A free port below the kernel's ephemeral range: while a test has its broker stopped, no outgoing
    connection on this busy machine (nor the edge's own reconnect attempts) can take the port over."""
    try:
        ephemeral_low = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    for _ in range(200):
        port = random.randint(10000, max(10001, ephemeral_low - 1))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free TCP port found below {ephemeral_low}")


def reachable(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


class Mosquitto:
    """A private broker on a free port, without persistence, that a test can stop and start again."""

    def __init__(self, workdir: Path, settings: str = "allow_anonymous true\n") -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} {self.host}\n{settings}persistence false\nlog_dest stderr\n")
        self.log = workdir / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = 5.0) -> None:
        assert not self.running, "throwaway mosquitto already running"
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout_s
        while not reachable(self.host, self.port, 0.1):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"throwaway mosquitto did not start on port {self.port}:\n{self.log.read_text()}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
