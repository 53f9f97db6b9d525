"""Hub settings: one object, from the environment (EH_*), refusing default secrets outside development."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-secret-change-me"
MIN_SECRET_CHARS = 32


class HubSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EH_", extra="forbid")

    environment: Literal["development", "production"] = "development"
    database_url: str = "sqlite:///estatehub.sqlite"
    """SQLAlchemy URL: sqlite:///path (default) or postgresql+psycopg://user@host/db."""
    secret_key: SecretStr = SecretStr(DEV_SECRET)
    """Signs API tokens; must be set (and not the default) in production."""
    token_ttl_s: int = Field(default=8 * 3600, ge=60)

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

    @model_validator(mode="after")
    def _no_default_secret_in_production(self) -> HubSettings:
        secret = self.secret_key.get_secret_value()
        if self.environment == "production" and (secret == DEV_SECRET or len(secret) < MIN_SECRET_CHARS):
            raise ValueError(
                f"EH_SECRET_KEY must be set to a random value of at least {MIN_SECRET_CHARS} characters in production "
                "(e.g. openssl rand -hex 32)"
            )
        if self.timeseries_backend == "influxdb" and not self.influxdb_url:
            raise ValueError("EH_TIMESERIES_BACKEND=influxdb needs EH_INFLUXDB_URL")
        return self


@lru_cache
def get_settings() -> HubSettings:
    return HubSettings()
