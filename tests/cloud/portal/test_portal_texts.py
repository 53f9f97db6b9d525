"""Every text the portal and finance templates show exists in Simplified Chinese and English, including the keys
they build from a value (a bill status, a payment method, an entry kind, a time-of-use period, ...)."""

from __future__ import annotations

import re
from pathlib import Path

from cloud.billing.engine import AllocationMethod, TouPeriod
from cloud.billing.models import EntryKind, RunState, TariffKind
from cloud.billing.texts import TEXTS
from cloud.console.i18n import CATALOGUE, LANGS
from cloud.payments.models import PaymentMethod
from cloud.portal.views import BillStatus

TEMPLATES = Path(__file__).resolve().parents[3] / "cloud" / "console" / "templates"
OURS = sorted([*TEMPLATES.glob("portal_*.html"), *TEMPLATES.glob("finance_*.html")])

BUILT_KEYS = {
    "portal_status_": [s.value for s in BillStatus],
    "portal_method_": [m.value for m in PaymentMethod],
    "portal_entry_": [k.value for k in EntryKind],
    "portal_tou_": [p.value for p in TouPeriod],
    "portal_alloc_": [m.value for m in AllocationMethod],
    "portal_tier_period_": ["monthly", "yearly"],
    "portal_source_": ["manual", "corrected"],
    "finance_run_state_": [s.value for s in RunState],
    "finance_tariff_kind_": [k.value for k in TariffKind],
}
"""Prefixes the templates join with a value (``t("portal_status_" ~ status.value)``), and every value."""


def test_every_key_the_templates_use_has_chinese_and_english() -> None:
    assert len(OURS) >= 10
    used: set[str] = set()
    built: set[str] = set()
    for template in OURS:
        text = template.read_text()
        used |= set(re.findall(r'\bt\("([a-z_]+)"\)', text))
        built |= set(re.findall(r'\bt\("([a-z_]+_)" ~', text))
    assert built == set(BUILT_KEYS), "a template builds keys from a prefix this test does not know"
    used |= {prefix + value for prefix, values in BUILT_KEYS.items() for value in values}
    assert sorted(used - set(CATALOGUE)) == []
    for key in used:
        assert set(CATALOGUE[key]) == set(LANGS) and all(CATALOGUE[key].values()), key


def test_portal_and_finance_texts_are_in_the_console_catalogue() -> None:
    for key, texts in TEXTS.items():
        assert key.startswith(("portal_", "finance_")), key
        assert CATALOGUE[key] == texts and set(texts) == set(LANGS) and all(texts.values()), key
