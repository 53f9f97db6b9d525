"""The billing engine: pure computation (no database, no HTTP) that bill runs call.

Typical use for one unit and one month (``split_month`` once per site and tariff, the rest per unit)::

    versions = [TariffVersion(row.effective_from, parse_tariff(row.document), row.id) for row in rows]
    segments = split_month(2026, 11, versions)                 # cut at tariff changes, local days
    start = reading_at(samples, to_ms(segment.start))          # boundary readings, estimated flags
    end = reading_at(samples, to_ms(segment.end))
    used = metered_usage(start, end, rollover=Rollover(Decimal("99999.99")))   # flags negative deltas
    usage = split_tou(document, start_ms, hourly, used.quantity).usage if document.tou else used.quantity
    lines = price_month([(segment, usage)], accumulated=year_to_date, household_size=persons)
    shares = allocate(pool_fen, {unit_id: area}, AllocationMethod.AREA).shares

Conventions: quantities are Decimal exact to 0.0001; prices are Decimal yuan (up to 6 places); amounts are
integer fen, each line rounded half-up on its own. The rules for tiers, time of use, proration and
allocation are documented in the modules ``pricing``, ``segments``, ``readings`` and ``allocation``.
"""

from cloud.billing.engine.allocation import (
    METHOD_LABEL,
    Allocation,
    AllocationMethod,
    LossPool,
    allocate,
    allocate_quantity,
    loss_pool,
)
from cloud.billing.engine.pricing import ChargeLine, Usage, price_month, price_segment
from cloud.billing.engine.readings import (
    MeteredUsage,
    MeterReplacement,
    Reading,
    Rollover,
    Sample,
    TouUsage,
    UsageFlag,
    metered_usage,
    reading_at,
    split_tou,
    to_decimal,
)
from cloud.billing.engine.rounding import largest_remainder
from cloud.billing.engine.segments import WHOLE_MONTH, Proration, Segment, TariffVersion, split_month, tier_year_start
from cloud.billing.engine.tariffs import (
    Component,
    FixedCharge,
    HouseholdAllowance,
    Season,
    TariffDocument,
    Tier,
    TouPeriod,
    TouPeriodSpec,
    TouWindow,
    Utility,
    dump_tariff,
    parse_tariff,
)

__all__ = [
    "METHOD_LABEL",
    "WHOLE_MONTH",
    "Allocation",
    "AllocationMethod",
    "ChargeLine",
    "Component",
    "FixedCharge",
    "HouseholdAllowance",
    "LossPool",
    "MeterReplacement",
    "MeteredUsage",
    "Proration",
    "Reading",
    "Rollover",
    "Sample",
    "Season",
    "Segment",
    "TariffDocument",
    "TariffVersion",
    "Tier",
    "TouPeriod",
    "TouPeriodSpec",
    "TouUsage",
    "TouWindow",
    "Usage",
    "UsageFlag",
    "Utility",
    "allocate",
    "allocate_quantity",
    "dump_tariff",
    "largest_remainder",
    "loss_pool",
    "metered_usage",
    "parse_tariff",
    "price_month",
    "price_segment",
    "reading_at",
    "split_month",
    "split_tou",
    "tier_year_start",
    "to_decimal",
]
