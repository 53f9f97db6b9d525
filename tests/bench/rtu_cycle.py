"""RTU poll cycle on the reference bus: 32 CHINT DTSU666 + 16 water meters at 9600 8N1.

Compares the planner with one-request-per-point polling (on the wire-time model) and measures a real
cycle through the edge's bus hub and pymodbus against the timing-emulating simulator, whose replies are
delayed exactly as a physical line would delay them. The physical minimum is the model's wire time of
the planned requests: no master on a real line can do better.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from edge.bus import BusHub
from edge.config import RtuBus
from firmware_sims.device import SimulatedDevice
from firmware_sims.rtu_server import RtuServer
from protocols.modbus.planner import ReadRequest, plan_cost, plan_naive, plan_profile
from protocols.modbus.wire import LineTiming
from protocols.profiles import load_profile

DEVICE_LATENCY_S = 0.02
CYCLES = 3


def reference_bus() -> list[SimulatedDevice]:
    meters = [SimulatedDevice(load_profile("chint_dtsu666"), unit, seed=unit) for unit in range(1, 33)]
    water = [SimulatedDevice(load_profile("xintai_water"), unit, seed=unit) for unit in range(33, 49)]
    return meters + water


async def _measure(path: str, plans: list[tuple[int, list[ReadRequest]]]) -> list[float]:
    hub = BusHub(
        RtuBus(
            name="ref", type="modbus-rtu", port=path, baudrate=9600, timeout_s=1.0, device_latency_s=DEVICE_LATENCY_S
        )
    )
    await hub.connect()
    cycles = []
    try:
        for _ in range(CYCLES):
            started = time.perf_counter()
            for unit, requests in plans:
                for request in requests:
                    request.decode(await hub.read(unit, request))
            cycles.append(time.perf_counter() - started)
    finally:
        hub.close()
    return cycles


def run() -> dict[str, float]:
    timing = LineTiming(9600, "N", 1, DEVICE_LATENCY_S)
    devices = reference_bus()
    plans = [(d.unit_id, plan_profile(d.profile, timing)) for d in devices]
    naive = [(d.unit_id, plan_naive(d.profile.points)) for d in devices]
    physical_min = sum(plan_cost(reqs, timing) for _, reqs in plans)
    with RtuServer(devices, timing) as server:
        measured = statistics.median(asyncio.run(_measure(server.path, plans)))
    return {
        "rtu_requests_per_cycle": sum(len(r) for _, r in plans),
        "rtu_requests_per_cycle_naive": sum(len(r) for _, r in naive),
        "rtu_wire_ms_per_cycle": round(physical_min * 1000, 1),
        "rtu_wire_ms_per_cycle_naive": round(sum(plan_cost(r, timing) for _, r in naive) * 1000, 1),
        "rtu_cycle_ms_measured": round(measured * 1000, 1),
        "rtu_cycle_ms_physical_min": round(physical_min * 1000, 1),
        "rtu_cycle_ratio": round(measured / physical_min, 3),
    }


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name}: {value}")
