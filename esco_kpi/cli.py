"""The `esco-kpi` command line. Errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import getpass
import json
import logging
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from kpi.settings import ConfigError, Settings, load_settings


class Failure(Exception):
    """An error to report as one line."""


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]


def _engine(ctx: click.Context):
    """An engine on the configured store, its tables created if missing."""
    from kpi.store.db import init_store, make_engine

    engine = make_engine(_settings(ctx))
    init_store(engine)
    return engine


def _progress(label: str):
    """A callback(step, done, total) that draws a progress bar on stderr."""
    state: dict[str, Any] = {}

    def update(step: str, done: int, total: int) -> None:
        bar = state.get(step)
        if bar is None:
            bar = click.progressbar(length=max(total, 1), label=f"{label}: {step}",
                                    file=sys.stderr, show_pos=True)
            bar.__enter__()
            state[step] = bar
            state["done:" + step] = 0
        bar.update(done - state["done:" + step])
        state["done:" + step] = done
        if done >= total:
            bar.__exit__(None, None, None)

    return update


@click.group()
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="config file (default ./config.yaml, then $ESCO_KPI_CONFIG)")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """esco-kpi: usage telemetry for the ESCO classification."""
    ctx.ensure_object(dict)
    ctx.obj["settings"] = load_settings(config_path)
    from kpi.logs import setup_logging

    setup_logging(ctx.obj["settings"]["logging.level"])


@cli.command()
@click.option("--no-catalogue", is_flag=True,
              help="create the stores only; load a release with `catalogue load`")
@click.pass_context
def init(ctx: click.Context, no_catalogue: bool) -> None:
    """Create the stores and load the bundled ESCO catalogue (safe to run twice)."""
    from kpi.catalogue.load import load_bundled
    from kpi.catalogue.report import load_lines
    from kpi.warehouse.label_keys import prepare as prepare_label_keys

    settings = _settings(ctx)
    engine = _engine(ctx)
    where = settings.data_dir
    if no_catalogue:
        click.echo(f"Stores ready in {where} (no catalogue loaded: load a release with "
                   f"`esco-kpi catalogue load`)")
        return
    loaded = load_bundled(engine, progress=_progress("catalogue"))
    if loaded:
        for line in load_lines(loaded):
            click.echo(line)
        # normalised once here, the first aggregation copies the labels' keys as they are
        prepare_label_keys(settings, engine, loaded.version)
    else:
        click.echo("The bundled ESCO catalogue was already loaded.")
    click.echo(f"Stores ready in {where}")


@cli.command()
@click.option("--host", help="address to listen on (default server.host)")
@click.option("--port", type=click.IntRange(0, 65535), help="port (default server.port)")
@click.option("--workers", type=click.IntRange(1, 64),
              help="worker processes (default server.workers; if empty, one per CPU core "
                   "plus one)")
@click.option("--no-scheduler", is_flag=True,
              help="do not run the aggregation here (extra collector hosts)")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, workers: int | None,
          no_scheduler: bool) -> None:
    """Run the collector and dashboard on gunicorn, and the aggregation schedule."""
    from sqlalchemy.exc import OperationalError

    from esco_kpi.server import serve as run
    from kpi.store.db import store_error

    try:
        _engine(ctx)
    except OperationalError as exc:
        # Serve anyway: /v1/health answers, and ingestion answers 503 until the store is back.
        logging.getLogger("esco_kpi").warning(
            "the store is unavailable at start (%s); requests get 503 until it answers",
            store_error(exc))
    run(_settings(ctx), host, port, workers, with_scheduler=not no_scheduler)


@cli.command()
@click.option("--events", "events", type=click.IntRange(1000, 50_000_000), default=300_000,
              show_default=True, help="synthetic events to send")
@click.option("--port", type=click.IntRange(1, 65535), help="port (default server.port)")
@click.option("--no-serve", is_flag=True, help="stop after sending and aggregating")
@click.pass_context
def demo(ctx: click.Context, events: int, port: int | None, no_serve: bool) -> None:
    """Init, register demo implementers, send two quarters of events over HTTP, serve."""
    from esco_kpi.demo import run_demo

    code = run_demo(_settings(ctx), ctx.parent.params.get("config_path") if ctx.parent else None,
                    events, port, keep_serving=not no_serve, progress=_progress("demo"),
                    echo=click.echo)
    ctx.exit(code)


@cli.group()
def implementer() -> None:
    """Register implementers and manage their API keys."""


@implementer.command("add")
@click.argument("name")
@click.option("--country", required=True, help="ISO 3166-1 alpha-2 code, e.g. DE")
@click.option("--sector", required=True, help="pes, private_employment, job_portal, "
              "education_training, public_authority or other")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.pass_context
def implementer_add(ctx: click.Context, name: str, country: str, sector: str,
                    as_json: bool) -> None:
    """Register an implementer and print its API key (shown only once)."""
    from kpi.store.registry import add_implementer

    imp, key = add_implementer(_engine(ctx), name, country, sector)
    if as_json:
        click.echo(json.dumps({"id": imp.id, "name": imp.name, "api_key": key}))
    else:
        click.echo(f"Implementer {imp.id} ({imp.name}, {imp.country}, {imp.sector}) added.")
        click.echo(f"API key (shown only now): {key}")


@implementer.command("list")
@click.option("--json", "as_json", is_flag=True, help="print a JSON list")
@click.pass_context
def implementer_list(ctx: click.Context, as_json: bool) -> None:
    """List implementers and their keys' prefixes."""
    from kpi.store.registry import list_implementers

    rows = list_implementers(_engine(ctx))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No implementers yet: add one with `esco-kpi implementer add`.")
        return
    click.echo(f"{'id':>4}  {'name':30}  cc  {'sector':20}  {'status':8}  keys")
    for row in rows:
        live = [k for k in row["keys"] if not k["revoked_at"]]
        status = "revoked" if row["revoked_at"] else "active"
        keys = ", ".join(k["prefix"] + (f" (until {k['expires_at']})" if k["expires_at"] else "")
                         for k in live) or "-"
        click.echo(f"{row['id']:>4}  {row['name'][:30]:30}  {row['country']}  "
                   f"{row['sector']:20}  {status:8}  {keys}")


@implementer.command("revoke")
@click.argument("implementer_id", type=int)
@click.pass_context
def implementer_revoke(ctx: click.Context, implementer_id: int) -> None:
    """Revoke every key of an implementer at once."""
    from kpi.store.registry import revoke_implementer

    revoke_implementer(_engine(ctx), implementer_id)
    click.echo(f"Implementer {implementer_id} revoked; its keys no longer work.")


@implementer.command("rotate-key")
@click.argument("implementer_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.pass_context
def implementer_rotate(ctx: click.Context, implementer_id: int, as_json: bool) -> None:
    """Issue a new key; the old one keeps working for keys.rotation_grace_hours."""
    from kpi.store.registry import rotate_key

    hours = _settings(ctx)["keys.rotation_grace_hours"]
    key = rotate_key(_engine(ctx), implementer_id, timedelta(hours=hours))
    if as_json:
        click.echo(json.dumps({"id": implementer_id, "api_key": key,
                               "old_key_valid_hours": hours}))
    else:
        click.echo(f"New API key (shown only now): {key}")
        click.echo(f"The previous key keeps working for {hours:g} hours.")


@cli.group()
def user() -> None:
    """Dashboard users."""


@user.command("add")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="read the password from stdin")
@click.option("--role", type=click.Choice(["viewer", "reviewer"]), default="viewer",
              show_default=True, help="a reviewer also decides on review items")
@click.pass_context
def user_add(ctx: click.Context, name: str, password_stdin: bool, role: str) -> None:
    """Add a dashboard user (asks for the password, or reads it from stdin)."""
    from kpi.store.registry import add_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise Failure("the passwords differ")
    add_user(_engine(ctx), name, password, role=role)
    click.echo(f"User {name} added ({role}).")


@cli.group()
def catalogue() -> None:
    """The ESCO catalogue."""


@catalogue.command("load")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--version", "version", required=True, help="ESCO version, e.g. 1.2.1")
@click.option("--replace", is_flag=True, help="replace a loaded version as a whole")
@click.pass_context
def catalogue_load(ctx: click.Context, paths: tuple[Path, ...], version: str,
                   replace: bool) -> None:
    """Load an ESCO release in ESCO's own CSV download format (folders or zips).

    Several paths, or a later load of another language's download of a loaded version, add
    their languages to that release when their concepts agree with it.
    """
    from kpi.catalogue.load import current_version, load_catalogue
    from kpi.catalogue.report import load_lines
    from kpi.warehouse.label_keys import prepare as prepare_label_keys

    engine = _engine(ctx)
    loaded = load_catalogue(engine, list(paths), version,
                            progress=_progress("catalogue"), replace=replace)
    for line in load_lines(loaded):
        click.echo(line)
    prepare_label_keys(_settings(ctx), engine, loaded.version)
    if current_version(engine) == loaded.version:
        # a release newer than every other: which review items does it hold?
        from kpi.review.reconcile import reconcile

        click.echo(reconcile(_settings(ctx), engine).sentence())


@catalogue.command("remove")
@click.argument("version")
@click.pass_context
def catalogue_remove(ctx: click.Context, version: str) -> None:
    """Remove a loaded release; events only it knew go back to quarantine."""
    from kpi.catalogue.load import remove_release
    from kpi.catalogue.report import remove_lines

    for line in remove_lines(remove_release(_engine(ctx), version)):
        click.echo(line)


@catalogue.command("list")
@click.option("--json", "as_json", is_flag=True, help="print one JSON list")
@click.pass_context
def catalogue_list(ctx: click.Context, as_json: bool) -> None:
    """The ESCO releases loaded, oldest first, and which one is current."""
    from kpi.catalogue.load import releases
    from kpi.catalogue.report import list_lines

    found = releases(_engine(ctx))
    if as_json:
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
        return
    for line in list_lines(found):
        click.echo(line)


@catalogue.command("diff")
@click.argument("a")
@click.argument("b")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object, with the lists")
@click.option("--limit", type=click.IntRange(0), default=10, show_default=True,
              help="items listed per section")
@click.pass_context
def catalogue_diff(ctx: click.Context, a: str, b: str, as_json: bool, limit: int) -> None:
    """What changed from loaded release A to loaded release B, e.g. `diff 1.0.8 1.2.0`."""
    from kpi.catalogue.diff import diff_releases

    result = diff_releases(_engine(ctx), a, b)
    if as_json:
        click.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=1))
        return
    for line in result.lines(limit):
        click.echo(line)


@cli.group()
def review() -> None:
    """The review loop: decide on implementers' suggestions and hand them over."""


def _item_line(item) -> str:
    where = item.concept_uri or item.concept_type or ""
    release = f"  in {item.in_release}" if item.in_release else ""
    grown = "  (grown since decided)" if item.grown_since_decision else ""
    return (f"{item.item_id}  {item.kind:11}  {item.status:8}  {item.language}  "
            f"{item.implementers:>4}  {item.events:>6}  {item.label[:40]:40}  {where}"
            f"{release}{grown}")


@review.command("list")
@click.option("--kind", type=click.Choice(["label", "proposal", "translation"]))
@click.option("--status", type=click.Choice(
    ["open", "accepted", "rejected", "deferred", "released", "covered"]))
@click.option("--language", help="two-letter language code, e.g. de")
@click.option("--json", "as_json", is_flag=True, help="print one JSON list")
@click.pass_context
def review_list(ctx: click.Context, kind: str | None, status: str | None,
                language: str | None, as_json: bool) -> None:
    """Review items by evidence (implementers, then events), with their statuses."""
    from kpi.review.decisions import list_items

    items = list_items(_settings(ctx), _engine(ctx), kind=kind, status=status,
                       language=language)
    if as_json:
        click.echo(json.dumps([i.public() for i in items], indent=2, ensure_ascii=False))
        return
    if not items:
        click.echo("No review items (they appear once suggestions are aggregated).")
        return
    click.echo(f"{'item':18}  {'kind':11}  {'status':8}  la  impl  events  "
               f"{'label':40}  concept")
    for item in items:
        click.echo(_item_line(item))


@review.command("decide")
@click.argument("item_ids", nargs=-1, required=True)
@click.option("--decision", required=True,
              type=click.Choice(["accept", "reject", "defer", "reopen"]))
@click.option("--by", "by", required=True, help="the reviewer's user name")
@click.option("--reason", type=click.Choice(["out_of_scope", "too_specific",
                                             "brand_or_product", "duplicate",
                                             "wrong_language", "not_a_label", "other"]),
              help="why (a rejection needs one)")
@click.option("--note", help="free text kept with the decision")
@click.pass_context
def review_decide(ctx: click.Context, item_ids: tuple[str, ...], decision: str, by: str,
                  reason: str | None, note: str | None) -> None:
    """Decide on review items; every decision is kept in the audit trail."""
    from kpi.review.decisions import decide

    items = decide(_settings(ctx), _engine(ctx), item_ids, decision, by, reason=reason,
                   note=note)
    for item in items:
        click.echo(f"{item.item_id}: {item.status} ({item.label})")


@review.command("export")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="folder for changes.csv, changes.ttl and manifest.json")
@click.option("--status", type=click.Choice(
    ["open", "accepted", "rejected", "deferred", "released", "covered"]),
    default="accepted", show_default=True)
@click.pass_context
def review_export(ctx: click.Context, out: Path, status: str) -> None:
    """Hand over the decided items: changes.csv, changes.ttl (SKOS) and manifest.json."""
    from kpi.review.handover import export_changes

    summary = export_changes(_settings(ctx), _engine(ctx), out, status)
    click.echo(f"Wrote {summary.items} {status} items ({summary.triples} triples) to "
               f"{summary.folder}")


@review.command("reconcile")
@click.pass_context
def review_reconcile(ctx: click.Context) -> None:
    """Mark the items that the newest loaded ESCO release holds: released or covered."""
    from kpi.review.reconcile import reconcile

    click.echo(reconcile(_settings(ctx), _engine(ctx)).sentence())


@review.command("summary")
@click.option("--json", "as_json", is_flag=True, help="print one JSON list")
@click.pass_context
def review_summary_command(ctx: click.Context, as_json: bool) -> None:
    """Items per kind, language and status; median days to decision and to release."""
    from kpi.review.summary import review_summary

    rows = review_summary(_settings(ctx), _engine(ctx))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'kind':11}  la  {'open':>5}  {'acc':>5}  {'rej':>5}  {'def':>5}  "
               f"{'rel':>5}  {'cov':>5}  days to decision / release")
    for row in rows:
        days = " / ".join("-" if row[k] is None else f"{row[k]:g}"
                          for k in ("days_to_decision", "days_to_release"))
        click.echo(f"{row['kind']:11}  {row['language']}  {row['open']:>5}  "
                   f"{row['accepted']:>5}  {row['rejected']:>5}  {row['deferred']:>5}  "
                   f"{row['released']:>5}  {row['covered']:>5}  {days}")


@cli.command()
@click.pass_context
def aggregate(ctx: click.Context) -> None:
    """Run the aggregation now (the scheduler in `serve` runs it every few minutes)."""
    from kpi.operations.retention import prune_events
    from kpi.warehouse.aggregate import run_aggregation

    engine = _engine(ctx)
    bar = _progress("aggregate")
    summary = run_aggregation(_settings(ctx), engine,
                              progress=lambda done, total: bar("reading events", done, total))
    pruned = prune_events(_settings(ctx), engine)
    click.echo(f"Aggregated {summary.events_read} new events; {summary.days_recomputed} days "
               f"published in {summary.duration_seconds:.1f} s (watermark {summary.watermark}).")
    if pruned:
        click.echo(f"Deleted {pruned} raw events older than storage.retention_days "
                   f"(their daily rollups stay).")


@cli.command()
@click.option("--quarter", required=True, help="the quarter, e.g. 2026-Q3")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("exports"), show_default=True, help="folder for the quarter's folder")
@click.pass_context
def export(ctx: click.Context, quarter: str, out: Path) -> None:
    """Write the quarter's CSV files and manifest.json, safe to publish."""
    from kpi.exports.quarterly import export_quarter

    summary = export_quarter(_settings(ctx), quarter, out, progress=_progress("export"))
    click.echo(f"Wrote {len(summary.files)} CSV files and manifest.json to {summary.folder}")
    for name, rows in summary.files.items():
        click.echo(f"  {name}: {rows} rows")


@cli.group()
def quarantine() -> None:
    """Events waiting for a catalogue that knows their concept."""


@quarantine.command("replay")
@click.pass_context
def quarantine_replay(ctx: click.Context) -> None:
    """Re-check quarantined events against the loaded catalogue; release what it knows."""
    from kpi.catalogue.quarantine import replay

    summary = replay(_engine(ctx), progress=_progress("quarantine"))
    click.echo(f"Checked {summary.checked} quarantined events: {summary.released} now count "
               f"(at the next aggregation), {summary.still_quarantined} still wait.")


@cli.command()
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("backups"), show_default=True, help="folder for the backup folder")
@click.pass_context
def backup(ctx: click.Context, out: Path) -> None:
    """Back up the ingest store and the warehouse, consistently, while serving."""
    from kpi.operations.backup import backup as run

    summary = run(_settings(ctx), out)
    click.echo(f"Backed up {summary.events} events ({summary.files} files) to {summary.folder}")


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="replace a store that already holds events")
@click.pass_context
def restore(ctx: click.Context, folder: Path, force: bool) -> None:
    """Restore a backup into the configured stores (stop `serve` first)."""
    from kpi.operations.backup import restore as run

    manifest = run(_settings(ctx), folder, force=force)
    click.echo(f"Restored the backup of {manifest['created_at']} "
               f"({manifest['events_at_backup_end']} events).")


def _known_errors() -> tuple[type[Exception], ...]:
    from kpi.catalogue.files import CatalogueError
    from kpi.exports.quarterly import ExportError
    from kpi.operations.backup import BackupError
    from kpi.review import ReviewError
    from kpi.store.registry import RegistryError
    from kpi.warehouse.aggregate import AggregationBusy

    return (Failure, ConfigError, RegistryError, CatalogueError, ExportError, AggregationBusy,
            BackupError, ReviewError, ValueError)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a command; print one line and exit non-zero on an error."""
    try:
        cli.main(args=argv, prog_name="esco-kpi", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("esco-kpi: aborted", err=True)
        return 130
    except click.UsageError as exc:
        hint = f" (see: esco-kpi {exc.ctx.command_path.split(' ', 1)[-1]} --help)" \
            if exc.ctx and " " in exc.ctx.command_path else " (see: esco-kpi --help)"
        click.echo(f"esco-kpi: error: {exc.format_message()}{hint}", err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"esco-kpi: error: {exc.format_message()}", err=True)
        return exc.exit_code
    except SystemExit:
        # A server worker or the server leaving: on its way out, not an error to describe.
        # (Testing it against _known_errors() would import half the core for nothing.)
        raise
    except _known_errors() as exc:
        click.echo(f"esco-kpi: error: {exc}", err=True)
        return 1
    except OSError as exc:
        click.echo(f"esco-kpi: error: {exc.strerror or exc}"
                   + (f": {exc.filename}" if exc.filename else ""), err=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - a store failure is still one line
        from sqlalchemy.exc import SQLAlchemyError

        from kpi.store.db import store_error

        if isinstance(exc, SQLAlchemyError):
            click.echo(f"esco-kpi: error: the store failed: {store_error(exc)}", err=True)
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
