"""Checks one MQTT message before anything is stored: accepted as an uplink message, or rejected with a reason.

Runs without a database, so a flood of hostile payloads costs parsing only. A rejection names what is wrong
in words a person can act on; it is stored as a dead letter, never raised.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from protocols.messages import (
    Ack,
    DataBatch,
    Event,
    EventBatch,
    EventType,
    ProtocolError,
    Status,
    decode,
)
from protocols.topics import NAMESPACE, TOPIC_VERSION, TopicAddress, Uplink, check_id, parse_topic

MAX_PAYLOAD_BYTES = 1024 * 1024
"""Default limit; the edge's batches are 256 KiB by default (edge.config.UplinkConfig.batch_max_bytes)."""
INT64_MAX = 2**63 - 1
"""Seqs, timestamps and counters are stored as BIGINT."""


@dataclass(frozen=True)
class Incoming:
    """One message as the broker delivered it."""

    topic: str
    payload: bytes
    received_at: datetime
    retained: bool = False
    """A retained copy replayed by the broker: the edge's latest status, not a sign of life now."""


@dataclass(frozen=True)
class Accepted:
    incoming: Incoming
    message: DataBatch | EventBatch | Status

    @property
    def key(self) -> tuple[str, str]:
        return self.message.site, self.message.edge

    def reject(self, reason: str) -> Rejected:
        """For a message the database refused after it passed every check here."""
        return Rejected(self.incoming, reason, *self.key)


@dataclass(frozen=True)
class Rejected:
    incoming: Incoming
    reason: str
    site: str | None = None
    edge: str | None = None
    """From the topic, when it is well formed."""


def accept(incoming: Incoming, max_bytes: int = MAX_PAYLOAD_BYTES) -> Accepted | Rejected | None:
    """Validate topic and payload together; None for a message that needs no action (a retained status cleared)."""
    try:
        address = parse_topic(incoming.topic)
    except ValueError as exc:
        address = None
        topic_error = str(exc)
    site, edge = (address.site, address.edge) if address else _edge_of(incoming.topic)

    def rejected(reason: str) -> Rejected:
        return Rejected(incoming, reason, site, edge)

    size = len(incoming.payload)
    if size > max_bytes:
        return rejected(f"payload of {size} bytes exceeds the hub's limit of {max_bytes} bytes")
    if address is None:
        return rejected(topic_error)
    if address.direction != "up":
        return rejected(f"topic {incoming.topic!r} is a downlink topic; the hub only takes uplink messages")
    if not incoming.payload and address.channel is Uplink.STATUS:
        return None  # an empty retained payload clears the edge's status; nothing to store
    try:
        message = decode(incoming.payload)
    except ProtocolError as exc:
        return rejected(str(exc))
    if isinstance(message, Ack):
        return rejected("an ack message on an uplink topic: acks go from the hub to the edge")
    problem = _problem(message, address)
    if problem is None and b"\\u0000" in incoming.payload and _has_nul(message):
        problem = f"{message.kind} message has text with a NUL character (\\u0000), which the hub cannot store"
    return rejected(problem) if problem else Accepted(incoming, message)


def _edge_of(topic: str) -> tuple[str | None, str | None]:
    """Site and edge of a topic that is wrong further down (say, an unknown channel), to file it under."""
    parts = topic.split("/")
    if len(parts) < 4 or parts[:2] != [NAMESPACE, TOPIC_VERSION]:
        return None, None
    try:
        return check_id("site", parts[2]), check_id("edge", parts[3])
    except ValueError:
        return None, None


def _problem(message: DataBatch | EventBatch | Status, address: TopicAddress) -> str | None:
    """What makes a well-formed message unacceptable here, if anything."""
    if message.kind != address.channel:
        return f"a {message.kind} message on the {address.channel} channel"
    if (message.site, message.edge) != (address.site, address.edge):
        return (
            f"edge {message.edge!r} of site {message.site!r} published on edge {address.edge!r}'s topic "
            f"(site {address.site!r})"
        )
    if message.sent_at > INT64_MAX:
        return f"sent_at {message.sent_at} is out of range"
    if isinstance(message, Status):
        if not 0 <= message.dropped_total <= INT64_MAX:
            return f"status dropped_total {message.dropped_total} is out of range"
        return None
    return _batch_problem(message)


def _batch_problem(batch: DataBatch | EventBatch) -> str | None:
    seqs = [r.seq for r in batch.records]
    if len(set(seqs)) != len(seqs):
        repeated = sorted(s for s, n in Counter(seqs).items() if n > 1)[:5]
        return f"{batch.kind} message has seq {', '.join(map(str, repeated))} more than once"
    if max(seqs) > INT64_MAX or max(r.ts for r in batch.records) > INT64_MAX:
        return f"{batch.kind} message has a seq or ts beyond {INT64_MAX}"
    if isinstance(batch, EventBatch):
        for i, event in enumerate(batch.records):
            if event.type is EventType.RECORDS_DROPPED and _dropped_ranges(event) is None:
                return (
                    f"events message invalid at records.{i}.data.ranges: a records_dropped event needs "
                    f"[[first, last], ...] with 1 <= first <= last < its own seq {event.seq}"
                )
    return None


def _dropped_ranges(event: Event) -> list[tuple[int, int]] | None:
    """The seq ranges a records_dropped event reports, or None if they are malformed."""
    ranges = event.data.get("ranges")
    if not isinstance(ranges, list) or not ranges:
        return None
    out = []
    for item in ranges:
        if not (isinstance(item, list) and len(item) == 2 and all(type(x) is int for x in item)):
            return None
        first, last = item
        if not 1 <= first <= last < event.seq:
            return None
        out.append((first, last))
    return out


def dropped_ranges(event: Event) -> list[tuple[int, int]]:
    """The ranges of an accepted records_dropped event (checked by accept)."""
    ranges = _dropped_ranges(event)
    assert ranges is not None, "accept() lets no malformed records_dropped event through"
    return ranges


def _has_nul(message: DataBatch | EventBatch | Status) -> bool:
    """PostgreSQL text and JSONB cannot hold NUL; refuse it on every backend alike (only looked for when the
    payload has a ``\\u0000`` escape, the one way JSON can carry it)."""
    return _nul_in(message.model_dump())


def _nul_in(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_nul_in(k) or _nul_in(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_nul_in(v) for v in value)
    return False
