"""``estatehub sim ...``: simulated meters, sensors and scanners."""

from __future__ import annotations

import click


@click.group()
def sim() -> None:
    """Simulated devices that behave like real ones, faults included."""
