"""The physical quantities a point can carry. Profiles name one of these, so a typo fails at load time."""

from enum import StrEnum


class Quantity(StrEnum):
    ENERGY_IMPORT_KWH = "energy_import_kwh"
    ENERGY_EXPORT_KWH = "energy_export_kwh"
    ENERGY_TOTAL_KWH = "energy_total_kwh"
    WATER_VOLUME_M3 = "water_volume_m3"
    WATER_REVERSE_M3 = "water_reverse_m3"
    FLOW_M3H = "flow_m3h"
    VOLTAGE_V = "voltage_v"
    CURRENT_A = "current_a"
    POWER_W = "power_w"
    POWER_KW = "power_kw"
    POWER_FACTOR = "power_factor"
    FREQUENCY_HZ = "frequency_hz"
    PRESSURE_KPA = "pressure_kpa"
    LEVEL_M = "level_m"
    TEMPERATURE_C = "temperature_c"
    HUMIDITY_PCT = "humidity_pct"
    RUN_STATE = "run_state"
    FAULT_STATE = "fault_state"
    DEVICE_ADDRESS = "device_address"


class PointKind(StrEnum):
    """How values of a point behave over time; counters get monotonicity checks."""

    COUNTER = "counter"
    GAUGE = "gauge"
    STATE = "state"
