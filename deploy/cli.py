"""The ``estatehub`` command: one group per area of the system."""

from __future__ import annotations

import importlib
import logging

import click

COMMANDS = {
    "sim": "firmware_sims.cli:sim",
    "edge": "edge.cli:edge",
    "hub": "cloud.cli:hub",
    "demo": "deploy.demo:demo",
}
"""Each group is imported only when it runs: the edge box never loads the hub (and its memory)."""


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name].split(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


@click.group(cls=LazyGroup)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """EstateHub: property-management IoT, from the meter to the bill."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


if __name__ == "__main__":
    main()
