"""Sending SMS: an interface for the gateway a deployment uses (Aliyun, Tencent Cloud, ...).

The built-in sender only logs the message, code included, so a development hub works without a gateway;
production deployments plug in their own sender through create_app(sms_sender=...).
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger(__name__)


class SmsSender(Protocol):
    def send(self, phone: str, text: str) -> None:
        """Deliver or raise; the binding code is lost with the request if this raises."""
        ...


class LoggingSmsSender:
    """Writes each message to the log instead of sending it (development only)."""

    def send(self, phone: str, text: str) -> None:
        log.warning("SMS not sent (no gateway configured) to %s: %s", phone, text)
