"""The ``estatehub`` command: one group per area of the system."""

from __future__ import annotations

import logging

import click

from cloud.cli import hub
from deploy.demo import demo
from edge.cli import edge
from firmware_sims.cli import sim


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """EstateHub: property-management IoT, from the meter to the bill."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


main.add_command(sim)
main.add_command(edge)
main.add_command(hub)
main.add_command(demo)


if __name__ == "__main__":
    main()
