"""The ingest worker: MQTT in, database, Ack out; a message is PUBACKed only once committed or dead-lettered.

Two threads. paho's network thread (``loop_start``) checks each message as it arrives (intake.accept: no
database) and queues it; the worker thread takes what has queued up as one group (up to ``group_messages``
or ``group_records``, never waiting for more), stores it in one transaction, publishes the Acks, and only
then PUBACKs the group. Under load groups grow by themselves, so the commit cost is shared; when idle a
message is stored as soon as it arrives.

The session is persistent (MQTT v5 ``clean_start=False`` with a session expiry, or 3.1.1
``clean_session=False``), so messages the worker has not PUBACKed wait at the broker while it restarts.
With v5, workers share one ``$share/<group>/`` subscription and the broker splits the stream between them.
Mosquitto 2.0 also routes a share of the stream to a stopped worker's session until the session expires;
that data is not lost (the edge resends batches it has no Ack for), only late.

When the database is unavailable the group is retried with backoff and nothing is PUBACKed: the broker
holds the messages (at most the receive window) and the edge holds every record it has no Ack for.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import Engine

from cloud.ingest.intake import MAX_PAYLOAD_BYTES, Accepted, Incoming, Rejected, accept
from cloud.ingest.store import DatabaseUnavailable, IngestStore
from cloud.settings import HubSettings
from protocols.messages import DataBatch, EventBatch
from protocols.topics import uplink_filter

log = logging.getLogger(__name__)

GROUP_MESSAGES = 64
GROUP_RECORDS = 40_000
RECEIVE_MAXIMUM = 128
"""MQTT v5: messages the broker may have un-PUBACKed with this worker (3.1.1: Mosquitto's own limit, 20)."""
SESSION_EXPIRY_S = 3600
"""How long the broker keeps a stopped worker's session and queued messages."""
RETRY_MIN_S = 0.5
RETRY_MAX_S = 5.0
POLL_S = 0.2
"""Longest wait for a message before checking for stop."""


@dataclass
class WorkerCounters:
    messages: int = 0
    """Messages committed (stored, dead-lettered or ignored) and PUBACKed."""
    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    db_retries: int = 0


@dataclass(frozen=True)
class _Delivery:
    mid: int
    qos: int
    connection: int
    """Which connection it came on: a PUBACK for an earlier connection's message is not sent (the broker
    sends that message again, and it is stored as a duplicate)."""
    item: Accepted | Rejected | None


class IngestWorker:
    """One worker process's MQTT client and store; run() until stop is set."""

    def __init__(
        self,
        settings: HubSettings,
        engine: Engine,
        worker_name: str,
        *,
        site: str = "+",
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        session_expiry_s: int = SESSION_EXPIRY_S,
        on_stored: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.client_id = client_id(settings, worker_name)
        self.counters = WorkerCounters()
        filter_ = uplink_filter(site)
        self.subscription = f"$share/{settings.share_group}/{filter_}" if settings.mqtt_v5 else filter_
        self._store = IngestStore(engine)
        self._max_bytes = max_payload_bytes
        self._session_expiry_s = session_expiry_s
        self._on_stored = on_stored
        """Called after a commit that stored records (the hub wakes its alarm evaluator with it)."""
        self._queue: queue.Queue[_Delivery] = queue.Queue()
        self._connection = 0
        self._stopping = False
        self.subscribed = threading.Event()
        self._client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        if s.mqtt_v5:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5, manual_ack=True
            )
        else:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=self.client_id,
                protocol=mqtt.MQTTv311,
                clean_session=False,
                manual_ack=True,
            )
        if s.broker_username is not None:
            password = s.broker_password.get_secret_value() if s.broker_password else None
            client.username_pw_set(s.broker_username, password)
        if s.broker_ca_file:
            client.tls_set(ca_certs=s.broker_ca_file)  # never falls back to plaintext
        client.reconnect_delay_set(1, 30)
        client.enable_logger(logging.getLogger(f"{__name__}.paho"))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def run(self, stop: threading.Event) -> None:
        """Ingest until ``stop`` is set; the group in hand is finished, queued messages are left to the broker."""
        s = self.settings
        if s.mqtt_v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self._session_expiry_s
            props.ReceiveMaximum = RECEIVE_MAXIMUM
            self._client.connect_async(s.broker_host, s.broker_port, 30, clean_start=False, properties=props)
        else:
            self._client.connect_async(s.broker_host, s.broker_port, 30)
        self._client.loop_start()
        log.info("ingest worker %s: subscribing to %s on %s:%d", self.client_id, self.subscription,
                 s.broker_host, s.broker_port)  # fmt: skip
        try:
            while not stop.is_set():
                group = self._take_group()
                if group:
                    self._handle(group, stop)
        finally:
            self._stopping = True
            self._client.disconnect()
            self._client.loop_stop()
            log.info("ingest worker %s: stopped", self.client_id)

    # --- paho callbacks (on paho's thread) -----------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _userdata: Any, flags: Any, reason: ReasonCode, _props: Any) -> None:
        s = self.settings
        if reason.is_failure:
            log.error("ingest: broker %s:%d refused the connection: %s", s.broker_host, s.broker_port, reason)
            return
        self._connection += 1
        log.info("ingest: connected to %s:%d (session present: %s)", s.broker_host, s.broker_port,
                 flags.session_present)  # fmt: skip
        # Subscribe every time: a restarted broker may have lost the session.
        rc, _mid = client.subscribe(self.subscription, qos=1)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.error("ingest: subscribing to %s failed: %s", self.subscription, mqtt.error_string(rc))

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: list[ReasonCode],
                      _props: Any) -> None:  # fmt: skip
        if any(r.is_failure for r in reasons):
            log.error("ingest: the broker refused the subscription %s: %s", self.subscription, reasons)
        else:
            log.info("ingest: subscribed to %s", self.subscription)
            self.subscribed.set()

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode,
                       _props: Any) -> None:  # fmt: skip
        if not self._stopping:
            log.warning("ingest: disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        payload, now = bytes(msg.payload), datetime.now(UTC)
        item: Accepted | Rejected | None
        try:
            incoming = Incoming(msg.topic, payload, now, msg.retain)
        except UnicodeDecodeError:  # Mosquitto refuses such topics; never let one stop paho's thread
            item = Rejected(Incoming("(not UTF-8)", payload, now), "topic is not valid UTF-8")
        else:
            try:
                item = accept(incoming, self._max_bytes)
            except Exception as exc:
                log.exception("ingest: checking a message on %s failed", incoming.topic)
                item = Rejected(incoming, f"checking it failed: {exc!r}")
        self._queue.put(_Delivery(msg.mid, msg.qos, self._connection, item))

    # --- the worker thread -----------------------------------------------------------------------------------

    def _take_group(self) -> list[_Delivery]:
        """What has queued up, without waiting for more than the first."""
        try:
            group = [self._queue.get(timeout=POLL_S)]
        except queue.Empty:
            return []
        records = _records(group[0])
        while len(group) < GROUP_MESSAGES and records < GROUP_RECORDS:
            try:
                delivery = self._queue.get_nowait()
            except queue.Empty:
                break
            group.append(delivery)
            records += _records(delivery)
        return group

    def _handle(self, group: list[_Delivery], stop: threading.Event) -> None:
        items = [d.item for d in group if d.item is not None]
        delay = RETRY_MIN_S
        while True:
            try:
                outcome = self._store.write(items)
                break
            except DatabaseUnavailable as exc:
                self.counters.db_retries += 1
                log.warning("ingest: database unavailable (%s); %d messages wait un-acknowledged, retrying in "
                            "%.1f s", exc, len(group) + self._queue.qsize(), delay)  # fmt: skip
                if stop.wait(delay):
                    return  # not PUBACKed: the broker delivers them again
                delay = min(delay * 2, RETRY_MAX_S)
        if delay > RETRY_MIN_S:
            log.info("ingest: database back; storing again")
        if outcome.stored and self._on_stored is not None:
            self._on_stored()
        for ack in outcome.acks:
            info = self._client.publish(ack.topic, ack.payload, qos=1)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:  # the edge resends the batch and is acked then
                log.debug("ingest: ack on %s not sent now: %s", ack.topic, mqtt.error_string(info.rc))
        for delivery in group:
            if delivery.connection == self._connection:
                self._client.ack(delivery.mid, delivery.qos)
        rejected = [d.item for d in group if isinstance(d.item, Rejected)]
        if rejected:
            log.warning("ingest: %d messages dead-lettered, e.g. from %s: %s", len(rejected),
                        rejected[0].incoming.topic, rejected[0].reason)  # fmt: skip
        c = self.counters
        c.messages += len(group)
        c.stored += outcome.stored
        c.duplicates += outcome.duplicates
        c.dead_letters += outcome.dead_letters


def client_id(settings: HubSettings, worker_name: str) -> str:
    """Stable per worker, so a restarted worker resumes its session and gets what waited for it."""
    return f"eh-hub-{settings.share_group}-{worker_name}"


def _records(delivery: _Delivery) -> int:
    item = delivery.item
    if isinstance(item, Accepted) and isinstance(item.message, DataBatch | EventBatch):
        return len(item.message.records)
    return 1
