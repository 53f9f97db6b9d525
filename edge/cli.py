"""``estatehub edge ...``: run the agent, check a config, probe a device."""

from __future__ import annotations

import click


@click.group()
def edge() -> None:
    """The edge agent in the plant room."""
