"""The dispatcher and its channels: MQTT to the real Mosquitto, signed webhooks, SMS through the log sender; a
failing channel is retried with backoff and holds up no other; two dispatchers never send a row twice."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import SecretStr
from sqlalchemy import select

from cloud.auth.sms import LoggingSmsSender
from cloud.db import make_engine, session_factory
from cloud.notify.channels import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    MqttSender,
    Outgoing,
    SmsChannel,
    WebhookSender,
    build_senders,
    verify,
)
from cloud.notify.dispatcher import MAX_ATTEMPTS, Dispatcher, backoff
from cloud.notify.models import Channel, Delivery, Notification
from cloud.notify.services import notify
from cloud.settings import HubSettings
from tests.cloud.api.hub_app import Hub
from tests.cloud.notify.helpers import queue
from tests.support.ackhub import wait_until

SECRET = "webhook-secret-for-tests-0123456789abcdef"
NOW = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)


class Receiver:
    """An integration's webhook endpoint: records each request; answers ``status`` (a list: one per request)."""

    def __init__(self, statuses: list[int]) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses = statuses
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/estatehub"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver([])
    yield r
    r.close()


def deliveries(hub: Hub) -> dict[Channel, Delivery]:
    with session_factory(hub.engine)() as session:
        return {d.channel: d for d in session.scalars(select(Delivery))}


def notification(hub: Hub, notification_id: int) -> Notification:
    with session_factory(hub.engine)() as session:
        row = session.get(Notification, notification_id)
        assert row is not None
        return row


def test_the_mqtt_channel_publishes_to_the_documented_topic(hub: Hub, shared_broker: tuple[str, int]) -> None:
    received: list[mqtt.MQTTMessage] = []
    subscribed = threading.Event()
    listener = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-notify-sub-{id(hub)}")
    listener.on_subscribe = lambda *_: subscribed.set()
    listener.on_message = lambda _c, _u, msg: received.append(msg)
    listener.connect(*shared_broker)
    listener.subscribe("eh/v1/demo-site/hub/notify/#", qos=1)
    listener.loop_start()
    sender = MqttSender(*shared_broker, client_id=f"test-notify-{id(hub)}")
    try:
        assert subscribed.wait(5)
        notification_id = queue(hub, "engineer_x", phone="13800000000")
        dispatcher = Dispatcher(hub.engine, [sender])
        assert dispatcher.route(NOW) == 1 and dispatcher.deliver(Channel.MQTT, NOW) == 1
        wait_until(lambda: bool(received), 5, "the notification on the broker")
    finally:
        sender.close()
        listener.loop_stop()
        listener.disconnect()
    (message,) = received
    assert message.topic == "eh/v1/demo-site/hub/notify/alarm.raised" and message.qos == 1
    payload = json.loads(message.payload)
    assert payload["id"] == notification_id and payload["site"] == "demo-site" and payload["title"] == "水泵房压力低"
    assert payload["user_id"] == hub.users["engineer_x"].id and payload["data"] == {"alarm_id": 7}
    assert "13800000000" not in message.payload.decode(), "integrations get no phone numbers"
    assert notification(hub, notification_id).delivered_at == NOW


def test_webhooks_are_signed_and_a_tampered_or_old_request_does_not_verify(hub: Hub, receiver: Receiver) -> None:
    notification_id = queue(hub, "engineer_x")
    dispatcher = Dispatcher(hub.engine, [WebhookSender(receiver.url, SECRET, clock=lambda: 1_780_000_000)])
    dispatcher.route(NOW)
    assert dispatcher.deliver(Channel.WEBHOOK, NOW) == 1
    (headers, body), secret = receiver.requests[0], SECRET.encode()
    assert json.loads(body)["id"] == notification_id and headers["x-estatehub-event"] == "alarm.raised"
    timestamp, signature = headers[TIMESTAMP_HEADER.lower()], headers[SIGNATURE_HEADER.lower()]
    assert signature.startswith("sha256=") and timestamp == "1780000000"
    assert verify(secret, timestamp, body, signature, now_s=1_780_000_010)
    assert not verify(secret, timestamp, body.replace(b"\\u6c34", b"x") + b" ", signature, now_s=1_780_000_010)
    assert not verify(b"another secret", timestamp, body, signature, now_s=1_780_000_010)
    assert not verify(secret, timestamp, body, signature, now_s=1_780_000_000 + 3600), "replayed an hour later"


def test_sms_goes_through_the_log_sender_to_people_without_an_account(hub: Hub,
                                                                       caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    with session_factory(hub.engine).begin() as session:
        row = notify(session, kind="ticket.done", title="报修已完成", body="请评价", phone="13912340000")
        assert row is not None
    dispatcher = Dispatcher(hub.engine, [SmsChannel(LoggingSmsSender())])
    dispatcher.route(NOW)
    with caplog.at_level(logging.WARNING, logger="cloud.auth.sms"):
        assert dispatcher.deliver(Channel.SMS, NOW) == 1
    assert "13912340000" in caplog.text and "报修已完成：请评价" in caplog.text
    assert deliveries(hub)[Channel.SMS].delivered_at == NOW


def test_sms_for_listed_kinds_only_and_a_user_without_phone_is_given_up_at_once(hub: Hub) -> None:
    sent: list[tuple[str, str]] = []

    class Captured:  # mock: no SMS gateway here
        def send(self, phone: str, text: str) -> None:
            sent.append((phone, text))

    dispatcher = Dispatcher(hub.engine, [SmsChannel(Captured())], sms_kinds=["ticket.assigned"])
    routine = queue(hub, "engineer_x", kind="ticket.commented")
    urgent = queue(hub, "engineer_x", kind="ticket.assigned")
    dispatcher.route(NOW)
    assert notification(hub, routine).delivered_at == NOW, "nothing to send: done at once (live only)"
    dispatcher.deliver(Channel.SMS, NOW)
    failed = deliveries(hub)[Channel.SMS]
    assert sent == [] and failed.failed_at == NOW and failed.last_error == "no phone number to send the SMS to"
    assert notification(hub, urgent).delivered_at is None and "sms: no phone" in (
        notification(hub, urgent).last_error or ""
    )


def test_a_failing_webhook_is_retried_with_backoff_and_holds_up_no_other_channel(hub: Hub) -> None:
    sms: list[str] = []

    class Captured:  # mock: no SMS gateway here
        def send(self, phone: str, text: str) -> None:
            sms.append(phone)

    receiver = Receiver([500, 503])
    try:
        dispatcher = Dispatcher(hub.engine, [WebhookSender(receiver.url, SECRET), SmsChannel(Captured())],
                                sms_kinds=["alarm."])  # fmt: skip
        with session_factory(hub.engine).begin() as session:
            session.get(type(hub.users["engineer_x"]), hub.users["engineer_x"].id).phone = "13700000000"  # type: ignore[union-attr]
        notification_id = queue(hub, "engineer_x")
        dispatcher.route(NOW)
        assert dispatcher.deliver(Channel.WEBHOOK, NOW) == 1
        assert dispatcher.deliver(Channel.SMS, NOW) == 1
        assert sms == ["13700000000"], "SMS went out while the webhook failed"
        hook = deliveries(hub)[Channel.WEBHOOK]
        assert hook.attempts == 1 and hook.next_attempt_at == NOW + backoff(1) and "answered 500" in hook.last_error  # type: ignore[operator]
        assert dispatcher.deliver(Channel.WEBHOOK, NOW + timedelta(seconds=1)) == 0, "not due before its backoff"
        assert dispatcher.deliver(Channel.WEBHOOK, NOW + backoff(1)) == 1
        later = NOW + backoff(1) + backoff(2)
        assert dispatcher.deliver(Channel.WEBHOOK, later) == 1
        assert deliveries(hub)[Channel.WEBHOOK].delivered_at == later and len(receiver.requests) == 3
        done = notification(hub, notification_id)
        assert done.delivered_at == later and done.attempts == 3 and done.last_error is None
    finally:
        receiver.close()
    assert backoff(MAX_ATTEMPTS) <= timedelta(minutes=5)


def test_a_channel_down_for_good_is_given_up_after_the_last_attempt(hub: Hub) -> None:
    dispatcher = Dispatcher(hub.engine, [WebhookSender("http://127.0.0.1:9/unreachable", SECRET)])
    queue(hub, "engineer_x")
    dispatcher.route(NOW)
    now = NOW
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert dispatcher.deliver(Channel.WEBHOOK, now) == 1
        now += backoff(attempt)
    hook = deliveries(hub)[Channel.WEBHOOK]
    assert hook.failed_at is not None and hook.attempts == MAX_ATTEMPTS and "unreachable" in (hook.last_error or "")
    assert dispatcher.deliver(Channel.WEBHOOK, now + timedelta(days=1)) == 0


postgres_only = pytest.mark.parametrize("migrated_url", ["postgresql"], indirect=True)


@postgres_only
def test_two_dispatchers_never_send_the_same_notification_twice(hub: Hub) -> None:
    sent: list[int] = []
    lock = threading.Lock()

    class Counting:  # mock: no SMS gateway here
        channel = Channel.SMS

        def send(self, item: Outgoing) -> None:
            with lock:
                sent.append(item.id)

    with session_factory(hub.engine).begin() as session:
        ids = [notify(session, kind="ticket.done", title="t", body="b", phone=f"139{n:08d}").id  # type: ignore[union-attr]
               for n in range(120)]  # fmt: skip
    url = hub.engine.url.render_as_string(hide_password=False)
    engines = [make_engine(url) for _ in range(2)]
    replicas = [Dispatcher(e, [Counting()]) for e in engines]
    start = threading.Barrier(2)

    def run(d: Dispatcher) -> None:
        start.wait()
        for _ in range(10):
            d.route(NOW)
            d.deliver(Channel.SMS, NOW)

    threads = [threading.Thread(target=run, args=(d,)) for d in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for e in engines:
        e.dispose()
    assert sorted(sent) == sorted(ids), "every notification sent exactly once"


def test_a_webhook_without_a_signing_secret_is_refused_at_startup() -> None:
    with pytest.raises(ValueError, match="EH_NOTIFY_WEBHOOK_URL needs EH_NOTIFY_WEBHOOK_SECRET"):
        HubSettings(notify_webhook_url="https://example.invalid/hook")
    with pytest.raises(ValueError, match="at least 32 characters in production"):
        HubSettings(environment="production", secret_key=SecretStr(SECRET), payment_webhook_secret=SecretStr(SECRET),
                    notify_webhook_url="https://example.invalid/hook", notify_webhook_secret=SecretStr("short"))  # fmt: skip
    settings = HubSettings(notify_mqtt=True, notify_webhook_url="https://example.invalid/hook",
                           notify_webhook_secret=SecretStr(SECRET))  # fmt: skip
    senders = build_senders(settings, LoggingSmsSender())
    assert [s.channel for s in senders] == [Channel.SMS, Channel.MQTT, Channel.WEBHOOK]
    assert [s.channel for s in build_senders(HubSettings(), LoggingSmsSender())] == [Channel.SMS]
