"""Command-line interface: parse, call the pipeline, render. Nothing else."""
from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from pathlib import Path

import click

from . import __version__, pipeline
from .config import Settings, load_settings
from .errors import (EXIT_CODES_HELP, EXIT_INDEX, EXIT_INTERNAL, BadInputError,
                     ProvenanceError)
from .report import Report, clean, load_report, render_text, to_json
from .report_html import render_html


class _Group(click.Group):
    """Turns domain errors into one line on stderr and a documented exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ProvenanceError as exc:
            click.echo(f"provenance: error: {clean(exc, 500)}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("provenance: interrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:
            # The reader stopped reading (`provenance list | head`): nothing is wrong.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(0)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # a bug: say so in one line, no traceback for users
            if _terminated.is_set():
                # The interrupt landed inside a library's own bookkeeping (a
                # process pool starting up) and surfaced as another error.
                click.echo("provenance: interrupted", err=True)
                ctx.exit(130)
            click.echo(f"provenance: internal error: {type(exc).__name__}: {clean(exc, 300)} "
                       "(please report it)", err=True)
            ctx.exit(EXIT_INTERNAL)


@click.group(cls=_Group, epilog=EXIT_CODES_HELP,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path),
              help="Index database (default: $PROVENANCE_DB or ~/.local/share/provenance/index.db).")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path),
              help="Config file (default: $PROVENANCE_CONFIG or ~/.config/provenance/feeds.toml).")
@click.option("-q", "--quiet", is_flag=True, help="No progress messages.")
@click.version_option(__version__, prog_name="provenance")
@click.pass_context
def main(ctx: click.Context, db: Path | None, config: Path | None, quiet: bool) -> None:
    """Find where a viral clip appeared before, from a local index of videos.

    \b
    provenance add SOURCE...     index files or URLs
    provenance check SOURCE      which indexed videos share footage with SOURCE
    """
    ctx.obj = {"db": db, "config": config, "quiet": quiet}
    # A cron `timeout` or a service stop sends SIGTERM: stop as on Ctrl-C, so that
    # partial downloads are removed, worker processes stopped and a feed run's
    # summary written.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


_terminated = threading.Event()


def _interrupt(signum, frame) -> None:
    _terminated.set()
    raise KeyboardInterrupt


def _settings(ctx: click.Context) -> Settings:
    return load_settings(ctx.obj["config"], db_path=ctx.obj["db"], quiet=ctx.obj["quiet"] or None)


def _progress(settings: Settings, message: str) -> None:
    if not settings.quiet and sys.stderr.isatty():
        click.echo(message, err=True)


@main.command()
@click.argument("sources", nargs=-1, required=True)
@click.pass_context
def add(ctx: click.Context, sources: tuple[str, ...]) -> None:
    """Index each SOURCE (a video file or a URL); one line per source."""
    settings = _settings(ctx)
    with pipeline.default_index(settings) as index:
        _progress(settings, f"indexing {len(sources)} source(s) …")
        failure = _echo_outcomes(
            ((clean(source, 300), outcome)
             for source, outcome in pipeline.add_many(list(sources), index, settings)),
            lambda source, done: f"{done.status} {source} (video #{done.video_id}, "
                                 f"{done.keyframes} keyframes)")
        pipeline.refresh_search(index)
    ctx.exit(failure)


def _echo_outcomes(outcomes, success_line) -> int:
    """One line per (label, outcome or error); the last failure's exit code, 0 if
    none. A broken index stops the run at once."""
    failure = 0
    for label, outcome in outcomes:
        if isinstance(outcome, ProvenanceError):
            if outcome.exit_code == EXIT_INDEX:
                raise outcome
            click.echo(f"failed {label}: {clean(outcome, 500)}")
            failure = outcome.exit_code
        else:
            click.echo(success_line(label, outcome))
    return failure


def _format_options(command):
    command = click.option(
        "--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
        help="Write the report to this file instead of standard output.")(command)
    return click.option(
        "--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text",
        show_default=True, help="Report format (html needs --output).")(command)


@main.command()
@click.argument("source")
@_format_options
@click.option("--add", "add_after", is_flag=True, help="Also index SOURCE after checking it.")
@click.pass_context
def check(ctx: click.Context, source: str, fmt: str, output: Path | None, add_after: bool) -> None:
    """Report which indexed videos share footage with SOURCE, aligned in time."""
    settings = _settings(ctx)
    _check_output(fmt, output)
    with pipeline.default_index(settings, create=add_after) as index:
        _progress(settings, f"checking {clean(source)} against {index.path} …")
        emit = functools.partial(_emit, fmt=fmt, output=output, settings=settings)
        # With --add the report is written before the query is indexed: a
        # report that cannot be written leaves the index as it was.
        report = pipeline.check(source, index, settings, add_after=add_after,
                                before_adding=emit)
    if not add_after:
        emit(report)


@main.command("report")
@click.argument("report_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_format_options
@click.pass_context
def report_command(ctx: click.Context, report_file: Path, fmt: str, output: Path | None) -> None:
    """Render a saved JSON report (from check or watch) as text, JSON or HTML."""
    settings = _settings(ctx)
    _check_output(fmt, output)
    _emit(load_report(report_file), fmt, output, settings)


def _check_output(fmt: str, output: Path | None) -> None:
    """Before any work: where the report goes must be usable."""
    if fmt == "html" and output is None:
        raise click.UsageError("--format html needs --output FILE")
    if output is not None and not output.parent.is_dir():
        raise BadInputError(f"cannot write the report to {output}: no folder {output.parent}")


def _emit(report: Report, fmt: str, output: Path | None, settings: Settings) -> None:
    """The report in ``fmt``, to ``output`` or stdout (``_check_output`` first)."""
    if fmt == "json":
        text = to_json(report)
    elif fmt == "html":
        text = render_html(report)
    else:
        text = render_text(report, color=output is None and sys.stdout.isatty())
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BadInputError(f"cannot write the report to {output}: {exc.strerror}") from exc
    _progress(settings, f"report written to {output}")


@main.command("list")
@click.pass_context
def list_videos(ctx: click.Context) -> None:
    """One line per indexed video: id, duration, keyframes, first source."""
    with pipeline.default_index(_settings(ctx), create=False) as index:
        for v in index.videos():
            first = v.sightings[0].metadata if v.sightings else None
            label = clean(first.url or first.source, 90) if first else "-"
            click.echo(f"{v.id:>6}  {v.duration_s or 0:7.1f} s  {v.keyframe_count:5} kf  "
                       f"{len(v.sightings)} sighting(s)  {label}")


@main.command()
@click.argument("video_id", type=int)
@click.pass_context
def show(ctx: click.Context, video_id: int) -> None:
    """Everything the index holds about one video."""
    with pipeline.default_index(_settings(ctx), create=False) as index:
        v = index.video(video_id)
        if v is None:
            raise BadInputError(f"no video #{video_id} in {index.path}")
        click.echo(f"video #{v.id}  sha256 {v.sha256}")
        click.echo(f"  {v.duration_s or 0:.1f} s  {v.width}x{v.height}  {v.keyframe_count} "
                   f"keyframes  added {v.added_at}")
        for s in v.sightings:
            m = s.metadata
            click.echo(f"  sighting #{s.id}: {clean(m.url or m.source, 200)}")
            for label, value in (("uploader", m.uploader), ("title", m.title),
                                 ("upload time", m.upload_time.value and
                                  f"{m.upload_time.value} ({m.upload_time.precision}, "
                                  f"from {m.upload_time.source})"),
                                 ("retrieved", m.retrieved_at), ("info.json", m.info_json_path)):
                if value:
                    click.echo(f"    {label:<12} {clean(value, 200)}")


@main.command()
@click.argument("video_id", type=int)
@click.pass_context
def remove(ctx: click.Context, video_id: int) -> None:
    """Remove a video, its sightings and its keyframes from the index."""
    with pipeline.default_index(_settings(ctx), create=False) as index:
        if not index.remove(video_id):
            raise BadInputError(f"no video #{video_id} in {index.path}")
        pipeline.refresh_search(index)
        click.echo(f"removed video #{video_id}")


@main.command()
@click.pass_context
def rehash(ctx: click.Context) -> None:
    """Hash again the videos indexed by an older version (`stats` counts them as
    to_rehash), from the files they were indexed from: before each keyframe's
    centre was stored (crops, captions and logos are found against them only
    then) or sampled otherwise (before the frames of fast motion between the
    samples were kept, sampling version 3). One line per video; a video whose
    file is gone or changed is left as it was."""
    settings = _settings(ctx)
    with pipeline.default_index(settings, create=False) as index:
        failure = _echo_outcomes(
            ((f"video #{video_id}", outcome)
             for video_id, outcome in pipeline.rehash_stale(index, settings)),
            lambda video, done:
                f"rehashed {video} ({done.keyframes} keyframes) from {clean(done.source, 300)}")
        pipeline.refresh_search(index)
    ctx.exit(failure)


@main.command()
@click.pass_context
def stats(ctx: click.Context) -> None:
    """Size and contents of the index."""
    with pipeline.default_index(_settings(ctx), create=False) as index:
        for key, value in index.stats().items():
            click.echo(f"{key:<16} {value}")


@main.command()
@click.option("--feed", "feed_names", multiple=True, help="Only this feed (repeatable).")
@click.option("--dry-run", is_flag=True, help="List what is new; fetch and index nothing.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Skip items published before DATE.")
@click.option("--max-items", type=click.IntRange(min=1), help="At most N new items per feed.")
@click.option("--reports-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where reports go (default: reports_dir from the config, else ./reports).")
@click.option("-v", "--verbose", is_flag=True, help="Progress for humans; cron runs are quiet.")
@click.pass_context
def watch(ctx: click.Context, feed_names: tuple[str, ...], dry_run: bool, since,
          max_items: int | None, reports_dir: Path | None, verbose: bool) -> None:
    """Fetch new items from the watched feeds, index them and report reposts.

    Meant for cron: `*/15 * * * * provenance watch`. Exit 0 when the run
    completed (even if some items failed: they are retried later), 7 when
    another run holds the lock.
    """
    from . import feeds

    settings = _settings(ctx)
    summary = feeds.watch(settings, ctx.obj["config"], feed_names=list(feed_names),
                          dry_run=dry_run, since=since.date() if since else None,
                          max_items=max_items, reports_dir=reports_dir, verbose=verbose)
    for line in summary.log_lines():
        click.echo(line)


if __name__ == "__main__":  # pragma: no cover
    main()
