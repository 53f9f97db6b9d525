"""Hub settings refuse what would be unsafe in production, with a message saying what to set."""

import pytest
from pydantic import SecretStr, ValidationError

from cloud.settings import HubSettings


def test_development_runs_on_defaults() -> None:
    assert HubSettings().database_url.startswith("sqlite:///")


@pytest.mark.parametrize("secret", [None, "short-secret"])
def test_production_refuses_a_default_or_short_secret(secret: str | None) -> None:
    extra = {} if secret is None else {"secret_key": SecretStr(secret)}
    with pytest.raises(ValidationError, match="EH_SECRET_KEY must be set to a random value of at least 32"):
        HubSettings(environment="production", **extra)


def test_production_accepts_a_long_random_secret() -> None:
    assert (
        HubSettings(
            environment="production", secret_key=SecretStr("x" * 64), payment_webhook_secret=SecretStr("y" * 64)
        ).environment
        == "production"
    )


def test_influxdb_backend_needs_its_url() -> None:
    with pytest.raises(ValidationError, match="EH_INFLUXDB_URL"):
        HubSettings(timeseries_backend="influxdb")
