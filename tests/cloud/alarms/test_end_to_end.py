"""End to end on the simulated site: the pump's outlet pressure drops below its limit at the edge -> the edge
raises its alarm -> MQTT (a real Mosquitto) -> hub ingest -> alarm -> ticket -> the plumber (not the
electrician) is told on their live page."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from cloud.alarms.models import Alarm, RuleKind
from cloud.db import session_factory
from cloud.tickets.models import Category, Ticket
from tests.cloud.alarms.pump_site import pressure_drop_to_technician, start_hub, stop_hub
from tests.support.brokers import Mosquitto


@pytest.mark.slow
def test_pump_pressure_drop_reaches_the_plumber(mosquitto: Mosquitto, tmp_path: Path) -> None:
    hub = start_hub(f"sqlite:///{tmp_path / 'hub.sqlite'}", (mosquitto.host, mosquitto.port))
    try:
        run = pressure_drop_to_technician(hub, tmp_path, (mosquitto.host, mosquitto.port))
        with session_factory(hub.engine)() as session:
            (alarm,) = session.scalars(select(Alarm)).all()
            (ticket,) = session.scalars(select(Ticket)).all()
    finally:
        stop_hub(hub)
    assert alarm.kind is RuleKind.EDGE_ALARM and alarm.device == "pump-station" and alarm.title.endswith("生活水泵房")
    assert ticket.alarm_id == alarm.id and ticket.category is Category.PLUMBING
    assert run.notification["kind"] == "ticket.assigned" and run.notification["data"]["ticket_id"] == ticket.id
    assert run.electrician_events == 0, "the electrician is not sent to a pump"
    assert run.latency_s < 5, f"{run.latency_s:.2f} s from the pressure drop to the plumber's page"
