"""The payment webhook secret: a development default that production refuses, like the token secret."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from cloud.settings import HubSettings

TOKEN_SECRET = SecretStr("t" * 64)


@pytest.mark.parametrize("secret", [None, "short"])
def test_production_refuses_a_default_or_short_webhook_secret(secret: str | None) -> None:
    extra = {} if secret is None else {"payment_webhook_secret": SecretStr(secret)}
    with pytest.raises(ValidationError, match="EH_PAYMENT_WEBHOOK_SECRET must be set"):
        HubSettings(environment="production", secret_key=TOKEN_SECRET, **extra)


def test_production_accepts_the_providers_signing_secret() -> None:
    settings = HubSettings(
        environment="production", secret_key=TOKEN_SECRET, payment_webhook_secret=SecretStr("w" * 40)
    )
    assert settings.payment_webhook_secret.get_secret_value() == "w" * 40
