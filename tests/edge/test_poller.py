"""The poller against simulated meters on a real pty RS-485 line, through the real pymodbus client."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import defaultdict
from typing import Any

import pytest

from edge.bus import BusHub
from edge.config import DeviceConfig, RtuBus, RtuOverTcpBus, TcpBus, ThresholdRule
from edge.counters import CounterTracker
from edge.poller import DevicePoller, Record
from edge.rules import RuleEngine
from firmware_sims.device import SimulatedDevice
from firmware_sims.faults import Fault, FaultKind
from firmware_sims.rtu_server import RtuServer
from firmware_sims.tcp_server import TcpServer
from protocols.modbus.wire import LineTiming
from protocols.profiles import load_profile

LATENCY_S = 0.01


class Collector:
    """Stands in for the outbox: keeps records with the monotonic time they were committed."""

    def __init__(self) -> None:
        self.records: list[tuple[float, Record]] = []

    async def __call__(self, records: list[Record]) -> None:
        now = time.monotonic()
        self.records += [(now, r) for r in records]

    def readings(self, device: str | None = None) -> list[tuple[float, Record]]:
        return [(t, r) for t, r in self.records if r["kind"] == "reading" and device in (None, r["device"])]

    def events(self, type_: str) -> list[Record]:
        return [r for _, r in self.records if r["kind"] == "event" and r["type"] == type_]


def water_bus(n: int) -> list[SimulatedDevice]:
    return [SimulatedDevice(load_profile("xintai_water"), unit, seed=unit) for unit in range(1, n + 1)]


def make_pollers(server: RtuServer, devices: list[SimulatedDevice], sink: Collector, interval_s: float,
                 rules: list[ThresholdRule] | None = None, **bus_options: Any) -> tuple[BusHub, list[DevicePoller]]:
    bus = RtuBus(name="rs485-1", type="modbus-rtu", port=server.path, baudrate=9600,
                 device_latency_s=LATENCY_S, **bus_options)
    hub = BusHub(bus)
    counters, engine = CounterTracker(), RuleEngine(rules or [])
    pollers = []
    for d in devices:
        config = DeviceConfig(name=f"m{d.unit_id}", bus=bus.name, unit_id=d.unit_id, profile=d.profile.id,
                              poll_intervals={g: interval_s for g in d.profile.poll_groups})
        pollers.append(DevicePoller(config, d.profile, hub, sink, counters, engine))
    return hub, pollers


async def run_for(hub: BusHub, pollers: list[DevicePoller], seconds: float, interval_s: float) -> None:
    tasks = [asyncio.create_task(p.run(stagger_s=interval_s * i / len(pollers))) for i, p in enumerate(pollers)]
    await asyncio.sleep(seconds)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    hub.close()


def test_one_silent_meter_does_not_stall_the_other_fifteen() -> None:
    interval_s, duration_s = 2.0, 24.0
    devices = water_bus(16)
    devices[5].set_fault(Fault(kind=FaultKind.NO_RESPONSE))
    sink = Collector()
    with RtuServer(devices, LineTiming(9600, "N", 1, LATENCY_S)) as server:
        hub, pollers = make_pollers(server, devices, sink, interval_s, timeout_s=0.5, backoff_initial_s=4.0)
        asyncio.run(run_for(hub, pollers, duration_s, interval_s))

    polled_at: dict[str, list[float]] = defaultdict(list)
    for t, r in sink.readings():
        if not polled_at[r["device"]] or polled_at[r["device"]][-1] != t:
            polled_at[r["device"]].append(t)
    assert "m6" not in polled_at
    assert set(polled_at) == {f"m{u}" for u in range(1, 17)} - {"m6"}
    for name, times in polled_at.items():
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert len(gaps) >= duration_s / interval_s - 2, name
        assert statistics.mean(gaps) == pytest.approx(interval_s, rel=0.10), (name, gaps)
        assert max(gaps) < interval_s * 1.3, (name, gaps)
    dead = next(p for p in pollers if p.name == "m6")
    # backoff windows of 4, 8 and 16 s: at most one timeout each, plus the first
    assert 1 <= dead.health.timeouts <= 4
    assert dead.health.skipped_in_backoff >= 6
    assert len(sink.events("device_offline")) == 1


def test_records_carry_decoded_values_and_link_health_is_kept() -> None:
    devices = water_bus(2)
    sink = Collector()
    with RtuServer(devices, LineTiming(9600, "N", 1, LATENCY_S)) as server:
        hub, pollers = make_pollers(server, devices, sink, 1.0)

        async def once() -> None:
            for p in pollers:
                assert await p.poll()
            hub.close()

        asyncio.run(once())
    readings = {r["point"]: r for _, r in sink.readings("m1")}
    assert {"forward_total", "reverse_total", "flow_rate"} <= set(readings)
    assert readings["forward_total"]["quantity"] == "water_volume_m3"
    assert readings["forward_total"]["value"] > 0
    assert readings["forward_total"]["quality"] == "good"
    health = pollers[0].health
    assert health.good_reads >= 1 and health.timeouts == 0
    assert health.latency_ms_last is not None and health.latency_ms_last > LATENCY_S * 1000


@pytest.mark.parametrize(("fault", "counter"), [(FaultKind.BAD_CRC, "crc_errors"), (FaultKind.NO_RESPONSE, "timeouts")])
def test_link_errors_are_classified(fault: FaultKind, counter: str) -> None:
    devices = water_bus(1)
    devices[0].set_fault(Fault(kind=fault))
    sink = Collector()
    with RtuServer(devices) as server:
        hub, pollers = make_pollers(server, devices, sink, 1.0, timeout_s=0.3)

        async def once() -> bool:
            try:
                return await pollers[0].poll()
            finally:
                hub.close()

        assert not asyncio.run(once())
    assert getattr(pollers[0].health, counter) == 1
    assert sink.events("device_offline")[0]["data"]["error"] == counter.rstrip("s").replace("crc_error", "crc_error")


def test_device_coming_back_is_reported_online() -> None:
    devices = water_bus(1)
    devices[0].set_fault(Fault(kind=FaultKind.NO_RESPONSE))
    sink = Collector()
    with RtuServer(devices) as server:
        hub, pollers = make_pollers(server, devices, sink, 1.0, timeout_s=0.2, backoff_initial_s=0.3)
        poller = pollers[0]

        async def scenario() -> None:
            assert not await poller.poll()
            assert not await poller.poll()  # inside the backoff window: not even tried
            devices[0].set_fault(None)
            await asyncio.sleep(0.35)
            assert await poller.poll()
            hub.close()

        asyncio.run(scenario())
    assert poller.health.timeouts == 1 and poller.health.skipped_in_backoff == 1
    assert [r["type"] for _, r in sink.records if r["kind"] == "event"] == ["device_offline", "device_online"]


def test_meter_replacement_is_sent_as_an_event_next_to_the_raw_value() -> None:
    devices = water_bus(1)
    sink = Collector()
    with RtuServer(devices) as server:
        hub, pollers = make_pollers(server, devices, sink, 1.0)
        poller = pollers[0]

        async def scenario() -> None:
            await poller.poll()
            devices[0].set_fault(Fault(kind=FaultKind.METER_REPLACED))
            await poller.poll()
            hub.close()

        asyncio.run(scenario())
    totals = [r["value"] for _, r in sink.readings("m1") if r["point"] == "forward_total"]
    assert totals[0] > 1 and totals[1] < 0.01, "raw values go upstream unchanged"
    (event,) = [e for e in sink.events("meter_replaced") if e["point"] == "forward_total"]
    assert event["data"]["previous"] == totals[0] and event["data"]["current"] == totals[1]


def test_edge_rule_raises_an_alarm_from_polled_values() -> None:
    pump = SimulatedDevice(load_profile("pump_station"), 1, seed=1)
    pump.set_fault(Fault(kind=FaultKind.OUT_OF_RANGE))
    rule = ThresholdRule(name="current-high", device="m1", point="motor_current", above=60, severity="critical")
    sink = Collector()
    with RtuServer([pump]) as server:
        hub, pollers = make_pollers(server, [pump], sink, 1.0, rules=[rule])

        async def once() -> None:
            await pollers[0].poll()
            hub.close()

        asyncio.run(once())
    current = next(r for _, r in sink.readings("m1") if r["point"] == "motor_current")
    assert current["quality"] == "out_of_range" and current["value"] > 100
    (alarm,) = sink.events("alarm_raised")
    assert alarm["data"]["rule"] == "current-high" and alarm["data"]["severity"] == "critical"
    assert {r["point"] for _, r in sink.readings("m1")} >= {"running", "fault", "outlet_pressure"}, "bit points read too"


@pytest.mark.parametrize("framing", ["mbap", "rtu"])
def test_modbus_tcp_and_rtu_over_tcp_gateways(framing: str) -> None:
    devices = [SimulatedDevice(load_profile("chint_dtsu666"), unit, seed=unit) for unit in (1, 2)]
    devices[1].set_fault(Fault(kind=FaultKind.EXCEPTION, exception_code=11))
    sink = Collector()
    with TcpServer(devices, framing=framing) as gateway:
        if framing == "mbap":
            bus: TcpBus | RtuOverTcpBus = TcpBus(name="gw", type="modbus-tcp", host="127.0.0.1", port=gateway.port)
        else:
            bus = RtuOverTcpBus(name="gw", type="rtu-over-tcp", host="127.0.0.1", port=gateway.port)
        hub = BusHub(bus)
        pollers = [
            DevicePoller(DeviceConfig(name=f"m{d.unit_id}", bus="gw", unit_id=d.unit_id, profile=d.profile.id),
                         d.profile, hub, sink, CounterTracker(), RuleEngine([]))
            for d in devices
        ]

        async def once() -> list[bool]:
            try:
                return [await p.poll() for p in pollers]
            finally:
                hub.close()

        assert asyncio.run(once()) == [True, False]
    voltage = next(r["value"] for _, r in sink.readings("m1") if r["point"] == "voltage_a")
    assert 200 < voltage < 240
    assert pollers[1].health.exceptions == len(pollers[1].plan(pollers[1].groups)), "exceptions counted per request"
    assert pollers[1].health.timeouts == 0 and not pollers[1].breaker.open, "an answering device is not backed off"
