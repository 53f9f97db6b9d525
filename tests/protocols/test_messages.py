"""Topics and payloads between edge and hub: round trips, and rejection with a reason a person can act on."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from protocols.messages import (
    Ack,
    DataBatch,
    EdgeState,
    Event,
    EventBatch,
    EventType,
    ProtocolError,
    Quality,
    Reading,
    Status,
    decode,
    encode,
)
from protocols.topics import Downlink, EdgeTopics, TopicAddress, Uplink, parse_topic, uplink_filter

READING = Reading(
    seq=7, ts=1_700_000_000_000, device="meter-1", point="energy_import", quantity="energy_import_kwh", value=12345.5
)
DATA = DataBatch(site="riverside", edge="edge-01", sent_at=1_700_000_000_500, records=[READING])


def _data_payload() -> dict[str, Any]:
    return json.loads(encode(DATA))


# Topics


@pytest.mark.parametrize("channel", list(Uplink))
def test_uplink_topic_round_trips(channel: Uplink) -> None:
    topics = EdgeTopics("riverside", "edge-01")
    assert topics.up(channel) == f"eh/v1/riverside/edge-01/up/{channel.value}"
    assert parse_topic(topics.up(channel)) == TopicAddress("riverside", "edge-01", "up", channel)


@pytest.mark.parametrize("channel", list(Downlink))
def test_downlink_topic_round_trips(channel: Downlink) -> None:
    topics = EdgeTopics("site.A_2", "Edge-9")
    assert parse_topic(topics.down(channel)) == TopicAddress("site.A_2", "Edge-9", "down", channel)


def test_uplink_filter() -> None:
    assert uplink_filter() == "eh/v1/+/+/up/#"
    assert uplink_filter("riverside") == "eh/v1/riverside/+/up/#"


@pytest.mark.parametrize("bad", ["", "a/b", "a+", "#", "a b", "-lead", "_lead", "x" * 65])
def test_bad_ids_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"site id {bad!r} is not usable in MQTT topics")):
        EdgeTopics(bad, "edge-01")
    with pytest.raises(ValueError, match=re.escape(f"edge id {bad!r} is not usable in MQTT topics")):
        EdgeTopics("riverside", bad)


def test_id_with_trailing_newline_is_rejected() -> None:
    with pytest.raises(ValueError, match="not usable in MQTT topics"):
        EdgeTopics("riverside\n", "edge-01")


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("eh/v1/riverside/edge-01/up", "is not in the eh/{version}/{site}/{edge}/up|down/... tree"),
        ("eh/v1/riverside/edge-01/up/data/extra", "is not in the eh/{version}/{site}/{edge}/up|down/... tree"),
        ("xx/v1/riverside/edge-01/up/data", "is not in the eh/{version}/{site}/{edge}/up|down/... tree"),
        ("eh/v2/riverside/edge-01/up/data", "uses version 'v2'; this build speaks v1"),
        ("eh/v1/river+side/edge-01/up/data", "site id 'river+side' is not usable"),
        ("eh/v1/riverside//up/data", "edge id '' is not usable"),
        ("eh/v1/riverside/edge-01/sideways/data", "direction must be 'up' or 'down', not 'sideways'"),
        ("eh/v1/riverside/edge-01/up/ack", "unknown up channel 'ack'"),
        ("eh/v1/riverside/edge-01/down/data", "unknown down channel 'data'"),
    ],
)
def test_bad_topics_are_rejected(topic: str, reason: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_topic(topic)
    assert reason in str(raised.value)


# Payload round trips


@pytest.mark.parametrize(
    "message",
    [
        DATA,
        DataBatch(
            site="riverside",
            edge="edge-01",
            sent_at=0,
            records=[READING, READING.model_copy(update={"seq": 8, "value": -3.5, "quality": Quality.OUT_OF_RANGE})],
        ),
        EventBatch(
            site="riverside",
            edge="edge-01",
            sent_at=5,
            records=[
                Event(seq=9, ts=4, type=EventType.COUNTER_ROLLOVER, device="meter-1", point="energy_import",
                      data={"before": 99999999.5, "after": 0.25}),
                Event(seq=10, ts=5, type=EventType.DEVICE_OFFLINE, message="no reply for 60 s"),
            ],
        ),
        Status(site="riverside", edge="edge-01", sent_at=1, state=EdgeState.ONLINE, agent_version="0.1.0",
               profile_versions={"chint_dtsu666": 1}, backlog=3),
        Status(site="riverside", edge="edge-01", sent_at=1, state=EdgeState.OFFLINE),
        Ack(edge="edge-01", acked_through=8, stored=(7, 8)),
        Ack(edge="edge-01", acked_through=0),
    ],
    ids=lambda m: type(m).__name__,
)
def test_message_round_trips(message: DataBatch | EventBatch | Status | Ack) -> None:
    payload = encode(message)
    assert decode(payload) == message
    assert decode(payload.decode()) == message


def test_encoded_payload_carries_version_and_kind() -> None:
    raw = _data_payload()
    assert (raw["v"], raw["kind"]) == (1, "data")


# Payload rejections


def _with(change: dict[str, Any]) -> bytes:
    raw = _data_payload()
    raw.update(change)
    return json.dumps(raw).encode()


def _with_record(change: dict[str, Any]) -> bytes:
    raw = _data_payload()
    raw["records"][0].update(change)
    return json.dumps(raw).encode()


def _without(field: str) -> bytes:
    raw = _data_payload()
    del raw[field]
    return json.dumps(raw).encode()


REJECTIONS: dict[str, tuple[bytes, str]] = {
    "non-json": (b"{not json", "payload is not valid UTF-8 JSON"),
    "non-utf8": (b"\xff\xfe", "payload is not valid UTF-8 JSON"),
    "non-object": (b"[1, 2]", "payload must be a JSON object, got list"),
    "string": (b'"data"', "payload must be a JSON object, got str"),
    "unknown-version": (_with({"v": 2}), "unsupported schema version 2; this build understands v=1"),
    "missing-version": (_without("v"), "unsupported schema version None"),
    "unknown-kind": (_with({"kind": "telemetry"}), "unknown message kind 'telemetry'"),
    "missing-kind": (_without("kind"), "unknown message kind None"),
    "missing-field": (_without("edge"), "data message invalid at edge: Field required"),
    "string-seq": (_with_record({"seq": "7"}), "invalid at records.0.seq: Input should be a valid integer"),
    "negative-seq": (_with_record({"seq": -1}), "invalid at records.0.seq: Input should be greater than or equal to 1"),
    "zero-seq": (_with_record({"seq": 0}), "invalid at records.0.seq: Input should be greater than or equal to 1"),
    "extra-field": (_with({"extra": 1}), "data message invalid at extra: Extra inputs are not permitted"),
    "extra-record-field": (_with_record({"unit": "kWh"}), "invalid at records.0.unit: Extra inputs are not permitted"),
    "empty-records": (_with({"records": []}), "invalid at records: List should have at least 1 item"),
    "unknown-quality": (_with_record({"quality": "bad"}), "quality: Input should be 'good' or 'out_of_range'"),
}


@pytest.mark.parametrize(("payload", "reason"), REJECTIONS.values(), ids=REJECTIONS.keys())
def test_bad_payloads_are_rejected_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError) as raised:
        decode(payload)
    assert reason in str(raised.value)


def test_empty_event_batch_is_rejected() -> None:
    payload = json.dumps(
        {"v": 1, "kind": "events", "site": "riverside", "edge": "edge-01", "sent_at": 0, "records": []}
    )
    with pytest.raises(ProtocolError, match="events message invalid at records: List should have at least 1 item"):
        decode(payload)


def test_boolean_version_is_rejected() -> None:
    with pytest.raises(ProtocolError, match="unsupported schema version"):
        decode(_with({"v": True}))
