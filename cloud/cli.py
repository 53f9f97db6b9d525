"""``estatehub hub ...``: the cloud hub's processes."""

from __future__ import annotations

import gc
import signal
import socket
import threading

import click

from cloud.ingest.intake import MAX_PAYLOAD_BYTES


@click.group()
def hub() -> None:
    """The cloud hub."""


@hub.command()
@click.option(
    "--worker",
    "worker_name",
    default=socket.gethostname,
    show_default="the host name",
    help="This worker's stable name (unique per process): a restarted worker resumes its MQTT session by it.",
)
@click.option("--site", default="+", show_default="every site", help="Ingest only this site's edges.")
@click.option("--max-payload-bytes", default=MAX_PAYLOAD_BYTES, show_default=True, type=click.IntRange(1024))
def ingest(worker_name: str, site: str, max_payload_bytes: int) -> None:
    """Store the edges' uplink messages and acknowledge them, until SIGINT/SIGTERM.

    One process is one worker; start several (different --worker names) to share the stream over an MQTT v5
    shared subscription. Settings come from EH_* variables (EH_DATABASE_URL, EH_BROKER_HOST, ...).
    """
    from cloud.db import make_engine
    from cloud.ingest.worker import IngestWorker
    from cloud.settings import get_settings

    # Each message makes hundreds of short-lived objects (no cycles among them): collecting every 700
    # allocations cost a third of the CPU at 100k readings/s.
    gc.set_threshold(100_000)
    settings = get_settings()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    engine = make_engine(settings.database_url)
    try:
        IngestWorker(settings, engine, worker_name, site=site, max_payload_bytes=max_payload_bytes).run(stop)
    finally:
        engine.dispose()


@hub.command("import-registry")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--demo", is_flag=True, help="Import the registry of the simulated demo site instead of a file.")
@click.option("--dry-run", is_flag=True, help="Check and report what would change, then roll back.")
def import_registry_command(file: str | None, demo: bool, dry_run: bool) -> None:
    """Import sites, buildings, units, meters, equipment, edges and devices from FILE (.yaml, or a .csv unit
    roster). Idempotent: rows are matched by code, so importing again updates and never duplicates. All or
    nothing: any invalid row and nothing is written. The schema is created first if missing."""
    import getpass
    import time

    from cloud.audit.services import Actor
    from cloud.db import make_engine, session_factory
    from cloud.registry.demo import demo_registry
    from cloud.registry.importer import RegistryImportError, import_registry, load_file, parse_data
    from cloud.schema import create_schema
    from cloud.settings import get_settings

    if (file is None) == (not demo):
        raise click.UsageError("give a FILE or --demo (not both)")
    started = time.perf_counter()
    engine = make_engine(get_settings().database_url)
    try:
        create_schema(engine)
        doc = parse_data(demo_registry(), "demo registry") if file is None else load_file(file)
        with session_factory(engine).begin() as session:
            report = import_registry(session, doc, Actor(f"cli:{getpass.getuser()}"), file or "demo registry")
            if dry_run:
                session.rollback()
    except RegistryImportError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    verb = "would import" if dry_run else "imported"
    click.echo(f"{verb} in {time.perf_counter() - started:.1f} s: {report.summary()}")


@hub.command("create-user")
@click.argument("username")
@click.option(
    "--role", required=True, type=click.Choice(["admin", "finance", "engineer", "technician", "guard"]),
    help="Owners are not created here: they bind themselves to their units by SMS code.",
)  # fmt: skip
@click.option("--site", "sites", multiple=True, help="Site code the user works at (repeatable).")
@click.option("--all-sites", is_flag=True, help="Admins only: every site, present and future.")
@click.option("--full-name", default="")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def create_user_command(username: str, role: str, sites: tuple[str, ...], all_sites: bool, full_name: str,
                        password: str) -> None:  # fmt: skip
    """Create a staff account (the first admin, typically). The schema is created first if missing."""
    import getpass

    from pydantic import ValidationError

    from cloud.audit.services import Actor
    from cloud.auth.schemas import UserCreate
    from cloud.auth.services import UserError, create_user
    from cloud.db import make_engine, session_factory
    from cloud.schema import create_schema
    from cloud.settings import get_settings

    try:
        fields = {"username": username, "role": role, "sites": list(sites), "all_sites": all_sites}
        data = UserCreate.model_validate({**fields, "full_name": full_name, "password": password})
    except ValidationError as exc:
        messages = (f"{'.'.join(map(str, e['loc'])) or 'user'}: {str(e['msg']).removeprefix('Value error, ')}"
                    for e in exc.errors())  # fmt: skip
        raise click.ClickException("; ".join(messages)) from None
    engine = make_engine(get_settings().database_url)
    try:
        create_schema(engine)
        with session_factory(engine).begin() as session:
            user = create_user(session, Actor(f"cli:{getpass.getuser()}"), data)
            click.echo(f"created {user.role.value} {user.username} (id {user.id})")
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()


def _serve(ingest: bool) -> None:
    from cloud.service import HubService
    from cloud.settings import get_settings

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    service = HubService(get_settings(), ingest=ingest, worker_name=socket.gethostname())
    service.start()
    click.echo(f"console: {service.console_url}")
    try:
        stop.wait()
    finally:
        service.stop()


@hub.command()
def serve() -> None:
    """Serve the HTTP API and the console (and refresh rollups) until SIGINT/SIGTERM; settings from EH_*."""
    _serve(ingest=False)


@hub.command()
def run() -> None:
    """Everything of the hub in one process: ingest worker, HTTP API, console, rollups (small sites, the demo)."""
    _serve(ingest=True)
