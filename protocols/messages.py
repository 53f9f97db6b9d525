"""MQTT payloads between edge and hub.

Every uplink record carries a per-edge sequence number (one sequence for readings and events alike), so
the hub can store idempotently by (edge, seq), find gaps, and acknowledge the highest contiguous seq it has
stored. Payloads are JSON with a schema version ``v``; anything else is rejected with a reason.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION: Literal[1] = 1
Seq = Annotated[int, Field(ge=1)]
EpochMs = Annotated[int, Field(ge=0)]
Name = Annotated[str, Field(min_length=1, max_length=128)]


class ProtocolError(ValueError):
    """A payload that cannot be accepted; the message says why, for the dead-letter table."""


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Quality(StrEnum):
    GOOD = "good"
    OUT_OF_RANGE = "out_of_range"


class Reading(_Strict):
    seq: Seq
    ts: EpochMs
    device: Name
    point: Name
    quantity: Name
    value: float
    quality: Quality = Quality.GOOD


class EventType(StrEnum):
    COUNTER_ROLLOVER = "counter_rollover"
    METER_REPLACED = "meter_replaced"
    COUNTER_DECREASE = "counter_decrease"
    ALARM_RAISED = "alarm_raised"
    ALARM_CLEARED = "alarm_cleared"
    DEVICE_OFFLINE = "device_offline"
    DEVICE_ONLINE = "device_online"
    PATROL_SCAN = "patrol_scan"
    RECORDS_DROPPED = "records_dropped"


class Event(_Strict):
    seq: Seq
    ts: EpochMs
    type: EventType
    device: Name | None = None
    point: Name | None = None
    message: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class _Uplink(_Strict):
    v: Literal[1] = SCHEMA_VERSION
    site: Name
    edge: Name
    sent_at: EpochMs


class DataBatch(_Uplink):
    kind: Literal["data"] = "data"
    records: Annotated[list[Reading], Field(min_length=1)]


class EventBatch(_Uplink):
    kind: Literal["events"] = "events"
    records: Annotated[list[Event], Field(min_length=1)]


class EdgeState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class LinkHealth(_Strict):
    """How one device on the edge's buses answers; lets the hub tell a dead meter from a quiet one."""

    ok: bool
    good_reads: Annotated[int, Field(ge=0)] = 0
    timeouts: Annotated[int, Field(ge=0)] = 0
    crc_errors: Annotated[int, Field(ge=0)] = 0
    exceptions: Annotated[int, Field(ge=0)] = 0
    skipped_in_backoff: Annotated[int, Field(ge=0)] = 0
    last_good_ts: EpochMs | None = None
    latency_ms_avg: float | None = None
    last_error: str = ""


class Status(_Uplink):
    """Retained birth message; the same shape with state=offline is the MQTT will."""

    kind: Literal["status"] = "status"
    state: EdgeState
    agent_version: str = ""
    config_version: str = ""
    profile_versions: dict[str, int] = Field(default_factory=dict)
    backlog: int = 0
    dropped_total: int = 0
    links: dict[str, LinkHealth] = Field(default_factory=dict)


class Ack(_Strict):
    """Hub -> edge: every record with seq <= acked_through is durably stored."""

    v: Literal[1] = SCHEMA_VERSION
    kind: Literal["ack"] = "ack"
    edge: Name
    acked_through: Annotated[int, Field(ge=0)]
    stored: tuple[Seq, Seq] | None = None
    """First and last seq of the batch this ack answers; stored even if a gap keeps acked_through lower."""


UplinkMessage = DataBatch | EventBatch | Status
_BY_KIND: dict[str, type[DataBatch | EventBatch | Status | Ack]] = {
    "data": DataBatch,
    "events": EventBatch,
    "status": Status,
    "ack": Ack,
}


def encode(message: _Strict) -> bytes:
    return message.model_dump_json(exclude_none=True).encode()


def decode(payload: bytes | str) -> DataBatch | EventBatch | Status | Ack:
    """Parse and validate one payload; raises ProtocolError with a reason a person can act on."""
    try:
        raw = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"payload is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ProtocolError(f"payload must be a JSON object, got {type(raw).__name__}")
    version = raw.get("v")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise ProtocolError(f"unsupported schema version {version!r}; this build understands v={SCHEMA_VERSION}")
    kind = raw.get("kind")
    model = _BY_KIND.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ProtocolError(f"unknown message kind {kind!r}; expected one of {sorted(_BY_KIND)}")
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ProtocolError(f"{kind} message invalid at {where or 'top level'}: {first['msg']}") from None
