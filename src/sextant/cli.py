"""The `sextant` command: run the server and administer organizations, keys and applications.

Administration works while the server runs on the same data dir: it goes through the control database,
which both processes may open, and the server sees each change on its next request.
"""

from __future__ import annotations

import dataclasses
import errno
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from sextant import __version__
from sextant.config import Limits, Settings
from sextant.control.apps import create_app, list_apps, set_app_enabled
from sextant.control.db import open_control
from sextant.control.keys import SCOPES, KeyKind, create_key, list_keys, revoke_key
from sextant.control.orgs import find_org, list_orgs, posthog_project_of, provision_org
from sextant.control.segments import create_segment, delete_segment, list_segments

app = typer.Typer(
    help="Sextant: a self-hostable analytics server that answers the Datadog, Dynatrace and PostHog APIs.",
    no_args_is_help=True,
    add_completion=False,
)
orgs_app = typer.Typer(
    help="Organizations: each has its own keys, applications and data.", no_args_is_help=True
)
keys_app = typer.Typer(
    help="API keys and tokens (stored hashed; a secret is shown only when created).", no_args_is_help=True
)
apps_app = typer.Typer(
    help="Product Analytics applications (the application.id events name).", no_args_is_help=True
)
app.add_typer(orgs_app, name="orgs")
app.add_typer(keys_app, name="keys")
segments_app = typer.Typer(
    help="Segments: stored sets of user ids for audience filters.", no_args_is_help=True
)
app.add_typer(apps_app, name="apps")
app.add_typer(segments_app, name="segments")
import_app = typer.Typer(help="Bulk imports into the store (stop the server first).", no_args_is_help=True)
app.add_typer(import_app, name="import")

T = TypeVar("T")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="SEXTANT_DATA_DIR",
        help="Directory holding the store, control database and credentials.",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
OrgOption = Annotated[str, typer.Option("--org", help="Organization name or numeric id.")]


def _fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def _control(data_dir: Path) -> sa.Engine:
    return open_control(Settings(data_dir=data_dir).control_db_path)


def _emit_json(value: Any) -> None:
    print(json.dumps(value))


def _in_org(data_dir: Path, org: str, read: Callable[[sa.Connection, int], T]) -> T:
    """Run `read` with the id of the organization named `org` (fail clearly when there is none)."""
    try:
        with _control(data_dir).connect() as conn:
            return read(conn, find_org(conn, org).id)
    except LookupError as exc:
        _fail(str(exc))


def _show(
    items: list[Any], as_json: bool, headers: tuple[str, ...], row: Callable[[Any], tuple[str, ...]]
) -> None:
    """Items as a JSON list (their fields) or as a table of `row(item)`."""
    if as_json:
        _emit_json([_as_json(item) for item in items])
        return
    table = Table(*headers)
    for item in items:
        table.add_row(*row(item))
    out.print(table)


def _as_json(item: Any) -> dict[str, Any]:
    fields: dict[str, Any] = dataclasses.asdict(item)
    return {
        k: v.value if isinstance(v, KeyKind) else list(v) if isinstance(v, tuple) else v
        for k, v in fields.items()
    }


def _version(value: bool) -> None:
    if value:
        print(f"sextant {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    pass


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="SEXTANT_HOST", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(envvar="SEXTANT_PORT", help="Port to listen on (0 picks a free one).")
    ] = 8080,
    data_dir: DataDir = Path("./data"),
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            envvar="SEXTANT_ACCESS_LOG",
            help="Log one JSON line per request to stdout.",
        ),
    ] = True,
    max_queued_events: Annotated[
        int,
        typer.Option(
            envvar="SEXTANT_MAX_QUEUED_EVENTS",
            min=1,
            help="Events accepted but not yet in the store; past this, intakes answer 503 with Retry-After.",
        ),
    ] = Limits().write_queue_events,
    max_queued_points: Annotated[
        int,
        typer.Option(
            envvar="SEXTANT_MAX_QUEUED_POINTS",
            min=1,
            help="Metric points accepted but not yet in the store; past this, metric intakes answer 503 "
            "with Retry-After.",
        ),
    ] = Limits().write_queue_points,
    max_queue_wait: Annotated[
        float,
        typer.Option(
            envvar="SEXTANT_MAX_QUEUE_WAIT",
            min=0.0,
            help="Seconds a request may wait for room when the queue is full before it is answered 503 "
            "(0 refuses at once).",
        ),
    ] = Limits().queue_wait_s,
) -> None:
    """Start the server on the embedded DuckDB store. SIGTERM or Ctrl-C commits pending writes and exits."""
    from sextant.server import serve as run
    from sextant.storage.duckdb.store import StoreBusy

    limits = dataclasses.replace(
        Limits(),
        write_queue_events=max_queued_events,
        write_queue_points=max_queued_points,
        queue_wait_s=max_queue_wait,
    )
    try:
        run(Settings(data_dir=data_dir, host=host, port=port, access_log=access_log, limits=limits))
    except StoreBusy as exc:
        _fail(str(exc))
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise
        _fail(f"cannot listen on {host}:{port}: {exc.strerror} (choose another with --port or --host)")


@orgs_app.command("create")
def orgs_create(name: str, data_dir: DataDir = Path("./data"), as_json: AsJson = False) -> None:
    """Create an organization with one key of each kind (all scopes), a PostHog project and an application."""
    try:
        provisioned = provision_org(_control(data_dir), name)
    except ValueError as exc:
        _fail(str(exc))
    if as_json:
        _emit_json(provisioned.as_json())
        return
    out.print(f"Created organization [bold]{name}[/bold] (id {provisioned.org_id}). Keys are shown only now:")
    table = Table("kind", "secret")
    for kind, secret in provisioned.keys.items():
        table.add_row(kind, secret)
    out.print(table)
    out.print(
        f"application id: {provisioned.application_id}   posthog project id: {provisioned.posthog_project_id}"
    )


@orgs_app.command("list")
def orgs_list(data_dir: DataDir = Path("./data"), as_json: AsJson = False) -> None:
    """List organizations."""
    with _control(data_dir).connect() as conn:
        orgs = list_orgs(conn)
    _show(orgs, as_json, ("id", "name"), lambda o: (str(o.id), o.name))


@keys_app.command("create")
def keys_create(
    org: OrgOption,
    kind: Annotated[KeyKind, typer.Option("--kind", help="Which vendor credential to create.")],
    name: Annotated[str, typer.Option(help="A label to recognise the key by.")] = "",
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="Grant only this scope (repeatable). Default: every scope of the kind."),
    ] = None,
    data_dir: DataDir = Path("./data"),
    as_json: AsJson = False,
) -> None:
    """Create a key; its secret is printed once and stored only as a hash."""
    engine = _control(data_dir)
    try:
        with engine.begin() as conn:
            organization = find_org(conn, org)
            project = (
                posthog_project_of(conn, organization.id) if kind is KeyKind.POSTHOG_PROJECT_TOKEN else None
            )
            record, secret = create_key(
                conn,
                org_id=organization.id,
                kind=kind,
                name=name or kind.value,
                scopes=tuple(scope) if scope else None,
                posthog_project_id=project,
            )
    except (LookupError, ValueError) as exc:
        _fail(str(exc))
    if as_json:
        _emit_json({"id": record.id, "kind": kind.value, "scopes": list(record.scopes), "secret": secret})
        return
    out.print(f"Created {kind.value} [bold]{record.id}[/bold] with scopes {', '.join(record.scopes)}")
    out.print(f"secret (shown only now): {secret}")


@keys_app.command("list")
def keys_list(org: OrgOption, data_dir: DataDir = Path("./data"), as_json: AsJson = False) -> None:
    """List an organization's keys (never their secrets)."""
    keys = _in_org(data_dir, org, list_keys)
    _show(
        keys,
        as_json,
        ("id", "kind", "name", "prefix", "scopes", "state"),
        lambda k: (
            k.id,
            k.kind.value,
            k.name,
            k.prefix + "…",
            " ".join(k.scopes),
            "revoked" if k.revoked_at else "active",
        ),
    )


@keys_app.command("revoke")
def keys_revoke(key_id: str, data_dir: DataDir = Path("./data")) -> None:
    """Revoke a key by id; a running server refuses it from its next request on."""
    with _control(data_dir).begin() as conn:
        if not revoke_key(conn, key_id):
            _fail(f"no active key with id {key_id!r} (see `sextant keys list --org ORG`)")
    out.print(f"Revoked {key_id}")


@keys_app.command("kinds")
def keys_kinds() -> None:
    """List key kinds and the scopes each can hold."""
    table = Table("kind", "scopes")
    for kind, scopes in SCOPES.items():
        table.add_row(kind.value, " ".join(scopes))
    out.print(table)


@apps_app.command("create")
def apps_create(
    name: str,
    org: OrgOption,
    app_id: Annotated[str | None, typer.Option("--id", help="Use this UUID instead of a random one.")] = None,
    data_dir: DataDir = Path("./data"),
    as_json: AsJson = False,
) -> None:
    """Create an enabled application."""
    try:
        with _control(data_dir).begin() as conn:
            application = create_app(conn, org_id=find_org(conn, org).id, name=name, app_id=app_id)
    except (LookupError, ValueError) as exc:
        _fail(str(exc))
    if as_json:
        _emit_json(_as_json(application))
        return
    out.print(f"Created application [bold]{application.id}[/bold] ({name})")


@apps_app.command("list")
def apps_list(org: OrgOption, data_dir: DataDir = Path("./data"), as_json: AsJson = False) -> None:
    """List an organization's applications."""
    applications = _in_org(data_dir, org, list_apps)
    _show(
        applications,
        as_json,
        ("id", "name", "state"),
        lambda a: (a.id, a.name, "enabled" if a.enabled else "disabled"),
    )


def _set_enabled(app_id: str, data_dir: Path, enabled: bool) -> None:
    with _control(data_dir).begin() as conn:
        if not set_app_enabled(conn, app_id, enabled):
            _fail(f"no application with id {app_id!r} (see `sextant apps list --org ORG`)")
    out.print(f"{'Enabled' if enabled else 'Disabled'} {app_id}")


@apps_app.command("disable")
def apps_disable(app_id: str, data_dir: DataDir = Path("./data")) -> None:
    """Disable an application: events naming it are refused with 400."""
    _set_enabled(app_id, data_dir, False)


@apps_app.command("enable")
def apps_enable(app_id: str, data_dir: DataDir = Path("./data")) -> None:
    """Enable a disabled application again."""
    _set_enabled(app_id, data_dir, True)


@segments_app.command("create")
def segments_create(
    name: str,
    org: OrgOption,
    file: Annotated[
        typer.FileText, typer.Option("--file", help="User ids, one per line ('-' reads standard input).")
    ],
    data_dir: DataDir = Path("./data"),
    as_json: AsJson = False,
) -> None:
    """Create a segment from a file of user ids; prints its id for audience_filters.segments."""
    try:
        with _control(data_dir).begin() as conn:
            segment = create_segment(conn, org_id=find_org(conn, org).id, name=name, user_ids=file)
    except (LookupError, ValueError) as exc:
        _fail(str(exc))
    if as_json:
        _emit_json(_as_json(segment))
        return
    out.print(f"Created segment [bold]{segment.id}[/bold] ({name}) with {segment.size} users")


@segments_app.command("list")
def segments_list(org: OrgOption, data_dir: DataDir = Path("./data"), as_json: AsJson = False) -> None:
    """List an organization's segments and their sizes."""
    segments = _in_org(data_dir, org, list_segments)
    _show(segments, as_json, ("id", "name", "users"), lambda s: (s.id, s.name, str(s.size)))


@segments_app.command("delete")
def segments_delete(segment_id: str, org: OrgOption, data_dir: DataDir = Path("./data")) -> None:
    """Delete a segment."""
    try:
        with _control(data_dir).begin() as conn:
            deleted = delete_segment(conn, find_org(conn, org).id, segment_id)
    except LookupError as exc:
        _fail(str(exc))
    if not deleted:
        _fail(f"no segment {segment_id!r} in organization {org!r} (see `sextant segments list --org ORG`)")
    out.print(f"Deleted {segment_id}")


@import_app.command("events")
def import_events_command(
    file: Annotated[Path, typer.Argument(help="NDJSON (one event per line) or Parquet (.parquet) file.")],
    org: OrgOption,
    data_dir: DataDir = Path("./data"),
) -> None:
    """Import Product Analytics server-side events, validated and flattened exactly as the intake does.

    All-or-nothing: one bad record (named by its line or row) or an interruption imports nothing, so fix
    the file and run the command again. Events without a `date` get the import time.
    """
    from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from sextant.control.directory import Directory
    from sextant.faces.datadog.server_side_events import ServerSideEvents
    from sextant.ingest.importer import ImportFailed, Source, import_events
    from sextant.ingest.log import IngestLog
    from sextant.ingest.writer import recover
    from sextant.storage.duckdb.store import DuckDBStore, StoreBusy

    settings = Settings(data_dir=data_dir)
    engine = _control(data_dir)
    try:
        with engine.connect() as conn:
            organization = find_org(conn, org)
        source = Source.open(file)
        store = DuckDBStore(settings.store_path)
    except (LookupError, ImportFailed, StoreBusy) as exc:
        _fail(str(exc))
    # Events a crashed server acknowledged but had not stored yet go in first, keeping event ids in order.
    recover(store, IngestLog(settings.ingest_log_dir))
    directory = Directory(engine, settings.control_db_path)
    events = ServerSideEvents(directory.application, organization.id, settings.limits.json_depth)
    amount = DownloadColumn() if source.kind == "ndjson" else MofNCompleteColumn()
    try:
        with Progress("[progress.description]{task.description}", BarColumn(), amount, TimeRemainingColumn(),
                      console=err) as progress:  # fmt: skip
            task = progress.add_task(f"importing {file.name}", total=source.total)
            count = import_events(store, source, events.add, lambda n: progress.advance(task, n))
    except ImportFailed as exc:
        _fail(f"{exc}; nothing was imported")
    finally:
        store.close()
        directory.close()
    out.print(f"Imported {count} events into organization {organization.name!r}")


def main() -> None:
    app()
