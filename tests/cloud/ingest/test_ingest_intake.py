"""What the hub refuses before storing anything, and the reason each dead letter carries."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from cloud.ingest.intake import Accepted, Incoming, Rejected, accept
from protocols.messages import Ack, EdgeState, Event, EventType, Status, encode
from protocols.topics import Uplink as Channel
from tests.cloud.ingest.helpers import data, events, topic

S, E = "site-a", "edge-1"
NOW = datetime(2026, 1, 5, tzinfo=UTC)
GOOD = json.loads(data(S, E, [1]))


def rejected(payload: bytes, on: str = topic(S, E), max_bytes: int = 4096) -> Rejected:
    item = accept(Incoming(on, payload, NOW), max_bytes)
    assert isinstance(item, Rejected), item
    return item


def altered(**changes: object) -> bytes:
    return json.dumps(GOOD | changes).encode()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\x8f\x00\xff garbage", "payload is not valid UTF-8 JSON: "),
        (b"[1, 2]", "payload must be a JSON object, got list"),
        (altered(v=2), "unsupported schema version 2; this build understands v=1"),
        (altered(v="1"), "unsupported schema version '1'; this build understands v=1"),
        (altered(kind="telemetry"), "unknown message kind 'telemetry'; expected one of ['ack', 'data', 'events', 'status']"),
        (altered(records=[]), "data message invalid at records: List should have at least 1 item after validation, not 0"),
        (altered(unexpected=1), "data message invalid at unexpected: Extra inputs are not permitted"),
        (altered(records=[{**GOOD["records"][0], "seq": "1"}]), "data message invalid at records.0.seq: Input should be a valid integer"),
        (data(S, E, [1, 2, 1]), "data message has seq 1 more than once"),
        (data(S, E, [2**63]), "data message has a seq or ts beyond 9223372036854775807"),
        (data(S, E, [1], device="m\x00"), "data message has text with a NUL character (\\u0000), which the hub cannot store"),
    ],
)
def test_a_bad_payload_is_rejected_with_a_reason(payload: bytes, reason: str) -> None:
    item = rejected(payload)
    assert item.reason.startswith(reason)
    assert (item.site, item.edge, item.incoming.payload) == (S, E, payload)


def test_an_oversized_payload_is_rejected_unread() -> None:
    assert rejected(b"x" * 5000).reason == "payload of 5000 bytes exceeds the hub's limit of 4096 bytes"


def test_an_edge_publishing_on_another_edges_topic_is_rejected() -> None:
    item = rejected(data(S, "edge-2", [1]))
    assert item.reason == "edge 'edge-2' of site 'site-a' published on edge 'edge-1''s topic (site 'site-a')"
    assert (item.site, item.edge) == (S, E), "filed under the topic's edge"
    assert rejected(data("site-b", E, [1])).reason.startswith("edge 'edge-1' of site 'site-b' published on")


@pytest.mark.parametrize(
    ("on", "reason", "address"),
    [
        ("eh/v1/site-a/edge-1/up/bogus", "topic 'eh/v1/site-a/edge-1/up/bogus': unknown up channel 'bogus'", (S, E)),
        ("eh/v1/site-a/edge 1/up/data", "edge id 'edge 1' is not usable in MQTT topics", (None, None)),
        ("eh/v1/site-a/edge-1/up/data/x", "topic 'eh/v1/site-a/edge-1/up/data/x' is not in the eh/{version}/", (S, E)),
        ("other/v1/site-a/edge-1/up/data", "topic 'other/v1/site-a/edge-1/up/data' is not in the eh/{version}/", (None, None)),
        ("eh/v1/site-a/edge-1/down/ack", "topic 'eh/v1/site-a/edge-1/down/ack' is a downlink topic", (S, E)),
    ],
)
def test_a_bad_topic_is_rejected(on: str, reason: str, address: tuple[str | None, str | None]) -> None:
    item = rejected(data(S, E, [1]), on)
    assert item.reason.startswith(reason)
    assert (item.site, item.edge) == address


def test_a_message_on_the_wrong_channel_is_rejected() -> None:
    status = encode(Status(site=S, edge=E, sent_at=1, state=EdgeState.ONLINE))
    assert rejected(status).reason == "a status message on the data channel"
    assert rejected(data(S, E, [1]), topic(S, E, Channel.EVENTS)).reason == "a data message on the events channel"
    ack = encode(Ack(edge=E, acked_through=3))
    assert rejected(ack).reason == "an ack message on an uplink topic: acks go from the hub to the edge"


@pytest.mark.parametrize("ranges", [None, [], [[5, 3]], [[0, 2]], [[1, 9]], [[1, "2"]], [[1, 2, 3]], "1-2"])
def test_a_records_dropped_event_needs_ranges_below_its_own_seq(ranges: object) -> None:
    event = Event(seq=9, ts=1, type=EventType.RECORDS_DROPPED, data={} if ranges is None else {"ranges": ranges})
    reason = rejected(events(S, E, [event]), topic(S, E, Channel.EVENTS)).reason
    assert reason == (
        "events message invalid at records.0.data.ranges: a records_dropped event needs [[first, last], ...] "
        "with 1 <= first <= last < its own seq 9"
    )


def test_a_valid_message_is_accepted() -> None:
    event = Event(seq=9, ts=1, type=EventType.RECORDS_DROPPED, data={"ranges": [[1, 4], [6, 8]]})
    item = accept(Incoming(topic(S, E, Channel.EVENTS), events(S, E, [event]), NOW))
    assert isinstance(item, Accepted) and item.key == (S, E)
    escaped_backslash = data(S, E, [1], device="m\\u0000")  # a backslash, then "u0000": no NUL
    assert isinstance(accept(Incoming(topic(S, E), escaped_backslash, NOW)), Accepted)
