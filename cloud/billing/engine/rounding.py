"""Exact integer rounding shared by pricing, readings and allocation: quantities in 0.0001, money in fen."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

UNIT = 10_000
"""Quantities are exact to 0.0001 of their unit and handled as integers of that step."""
STEP = Decimal("0.0001")


def largest_remainder(total: int, weights: Sequence[int], weight_sum: int) -> list[int]:
    """Split the integer ``total`` in proportion to non-negative integer ``weights`` (summing to
    ``weight_sum`` > 0): floors first, then one more to the largest remainders, ties to the earlier index.

    The parts sum exactly to ``total``, none is negative, and with ``total <= weight_sum`` none exceeds
    its weight (only parts with a remainder get the extra one).
    """
    floors = [total * w // weight_sum for w in weights]
    short = total - sum(floors)
    if short:
        order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % weight_sum), i))
        for i in order[:short]:
            floors[i] += 1
    return floors


def decimal_places(value: Decimal) -> int:
    """Digits after the point as written (``Decimal("1.50")`` has 2)."""
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0
