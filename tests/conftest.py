"""Shared fixtures: a throwaway Mosquitto a test may stop and restart, and the shared broker."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.brokers import MOSQUITTO, SHARED_BROKER, Mosquitto, reachable


@pytest.fixture
def shared_broker() -> tuple[str, int]:
    """The long-running Mosquitto on 127.0.0.1:1883 (shared: tests must never stop it)."""
    if not reachable(*SHARED_BROKER):
        pytest.fail(
            f"no MQTT broker at {SHARED_BROKER[0]}:{SHARED_BROKER[1]}: these tests need the shared Mosquitto "
            "running (e.g. `service mosquitto start` or deploy/ensure-services.sh)"
        )
    return SHARED_BROKER


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    if shutil.which(MOSQUITTO) is None:
        pytest.fail(f"{MOSQUITTO} is not installed; apt-get install mosquitto")
    broker = Mosquitto(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
