"""The sample tariff documents beside these tests (real figures from shared/reference/tariffs.md)."""

from __future__ import annotations

from pathlib import Path

from cloud.billing.engine import TariffDocument, parse_tariff

TARIFFS = Path(__file__).parent / "tariffs"


def tariff(name: str) -> TariffDocument:
    return parse_tariff((TARIFFS / f"{name}.json").read_text(encoding="utf-8"))
