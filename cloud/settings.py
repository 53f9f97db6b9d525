"""Hub settings: one object, from the environment (EH_*), refusing default secrets outside development."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-secret-change-me"
MIN_SECRET_CHARS = 32
DEV_PAYMENT_SECRET = "dev-only-payment-webhook-secret"


class HubSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EH_", extra="forbid")

    environment: Literal["development", "production"] = "development"
    database_url: str = "sqlite:///estatehub.sqlite"
    """SQLAlchemy URL: sqlite:///path (default) or postgresql+psycopg://user@host/db."""
    secret_key: SecretStr = SecretStr(DEV_SECRET)
    """Signs API tokens; must be set (and not the default) in production."""
    token_ttl_s: int = Field(default=8 * 3600, ge=60)
    payment_webhook_secret: SecretStr = SecretStr(DEV_PAYMENT_SECRET)
    """Signs the payment provider's webhooks (HMAC-SHA256); must be set (and not the default) in production."""

    broker_host: str = "127.0.0.1"
    broker_port: int = 1883
    broker_username: str | None = None
    broker_password: SecretStr | None = None
    broker_ca_file: str | None = None
    mqtt_v5: bool = True
    """Use an MQTT v5 shared subscription ($share/<group>/...) so hub workers split the stream."""
    share_group: str = "hub"

    timeseries_backend: Literal["sql", "influxdb"] = "sql"
    influxdb_url: str | None = None
    influxdb_token: SecretStr | None = None
    influxdb_org: str = "estatehub"
    influxdb_bucket: str = "telemetry"

    http_host: str = "127.0.0.1"
    http_port: int = 8000

    notify_mqtt: bool = False
    """Publish every notification to eh/v1/<site>/hub/notify/<kind> (QoS 1) for integrations."""
    notify_mqtt_host: str | None = None
    """Defaults to broker_host / broker_port."""
    notify_mqtt_port: int | None = None
    notify_mqtt_username: str | None = None
    """The notify channel's own broker account (publish-only on eh/v1/+/hub/notify/#)."""
    notify_mqtt_password: SecretStr | None = None
    notify_webhook_url: str | None = None
    """POST every notification here, signed with notify_webhook_secret (HMAC-SHA256)."""
    notify_webhook_secret: SecretStr | None = None
    notify_sms_kinds: list[str] = Field(default_factory=list)
    """Notification kinds (prefixes, e.g. ticket.assigned) also sent by SMS; people without an account always."""

    @model_validator(mode="after")
    def _no_default_secret_in_production(self) -> HubSettings:
        secret = self.secret_key.get_secret_value()
        if self.environment == "production" and (secret == DEV_SECRET or len(secret) < MIN_SECRET_CHARS):
            raise ValueError(
                f"EH_SECRET_KEY must be set to a random value of at least {MIN_SECRET_CHARS} characters in production "
                "(e.g. openssl rand -hex 32)"
            )
        webhook_secret = self.payment_webhook_secret.get_secret_value()
        if self.environment == "production" and (
            webhook_secret == DEV_PAYMENT_SECRET or len(webhook_secret) < MIN_SECRET_CHARS
        ):
            raise ValueError(
                f"EH_PAYMENT_WEBHOOK_SECRET must be set to the provider's signing secret of at least "
                f"{MIN_SECRET_CHARS} characters in production"
            )
        hook_secret = self.notify_webhook_secret.get_secret_value() if self.notify_webhook_secret else ""
        if self.notify_webhook_url and (
            not hook_secret or (self.environment == "production" and len(hook_secret) < MIN_SECRET_CHARS)
        ):
            raise ValueError(
                f"EH_NOTIFY_WEBHOOK_URL needs EH_NOTIFY_WEBHOOK_SECRET (at least {MIN_SECRET_CHARS} characters in "
                "production) to sign the requests"
            )
        if self.timeseries_backend == "influxdb" and not self.influxdb_url:
            raise ValueError("EH_TIMESERIES_BACKEND=influxdb needs EH_INFLUXDB_URL")
        return self


@lru_cache
def get_settings() -> HubSettings:
    return HubSettings()
