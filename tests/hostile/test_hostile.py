"""Hostile input (issue 6): for every kind of bad input in ``corpus.CASES``, one clear
line and the documented exit code, never a traceback, and the index as it was.

The table lives in ``corpus.py`` (one ``Case`` per kind: id, builder, command,
expected exit code, expected message fragment); ``test_corpus_holds_N_kinds`` below
carries the count in its name. Cases run against a copy of an index seeded with one
clip; ``provenance list`` and ``stats`` (run in-process through the same click
commands) and the database bytes are compared before and after.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from provenance.cli import main

from .corpus import CASES, Case, Ctx, HostileServer, Media, command_of, run

IS_ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """Shared media, a misbehaving server, an index holding one clip, and a real
    saved report (for the report-file cases)."""
    root = tmp_path_factory.mktemp("hostile")
    media = Media(root / "media")
    server = HostileServer(root / "www")
    seed = root / "seed"
    seed.mkdir()
    env = {"PROVENANCE_DB": str(seed / "index.db"), "XDG_CACHE_HOME": str(seed / "cache"),
           "XDG_CONFIG_HOME": str(seed / "config"), "XDG_DATA_HOME": str(seed / "data")}
    ctx = Ctx(seed, media, server, seed / "index.db", env)
    done = run(ctx, ["add", str(media.base)])
    assert done.code == 0 and done.stdout.startswith("added "), done
    checked = run(ctx, ["check", str(media.base), "--format", "json"])
    assert checked.code == 0, checked.stderr
    assert not (seed / "index.db-wal").exists()  # closed cleanly: one file to copy
    yield {"media": media, "server": server, "db": seed / "index.db",
           "report": json.loads(checked.stdout)}
    server.close()


def _params():
    for case in CASES:
        marks = []
        if case.xfail:
            marks.append(pytest.mark.xfail(strict=True, reason=case.xfail))
        if case.needs_root:
            marks.append(pytest.mark.skipif(
                not IS_ROOT, reason="needs root to mount a tmpfs (CI runs as root: it runs there)"))
        yield pytest.param(case, id=case.id, marks=marks)


def _snapshot(db: Path) -> dict:
    runner = CliRunner()
    env = {"PROVENANCE_DB": str(db), "PROVENANCE_CONFIG": os.devnull}
    listed = runner.invoke(main, ["--db", str(db), "list"], env=env)
    stats = runner.invoke(main, ["--db", str(db), "stats"], env=env)
    counts = {}
    for line in stats.output.splitlines():
        key, _, value = line.partition(" ")
        if key in ("videos", "sightings", "keyframes"):
            counts[key] = int(value)
    digest = hashlib.sha256(db.read_bytes()).hexdigest() if db.is_file() else None
    return {"list": (listed.exit_code, listed.output),
            "stats": (stats.exit_code, stats.output.split("size_bytes")[0]),
            "counts": counts, "sha256": digest}


def _check_outcome(case: Case, args: list, done) -> None:
    output = done.stdout + done.stderr
    assert done.code == case.code, f"exit {done.code}, expected {case.code}: {output[-2000:]}"
    assert case.message in output, output[-2000:]
    assert "Traceback" not in output
    assert "internal error" not in output
    command = command_of(args)
    if case.code == 0:
        if command == "add":
            assert done.stdout.startswith(f"{case.message} "), done.stdout
            assert len(done.stdout.splitlines()) == 1
    elif command == "add" and case.code != 6 and not case.setup_error:
        # add goes on after a failure: one "failed SOURCE: reason" line per source
        assert done.stdout.startswith("failed ") and len(done.stdout.splitlines()) == 1, output
        assert done.stderr == ""
    else:
        assert done.stderr.startswith("provenance: error: "), output
        assert done.stderr.count("\n") == 1, done.stderr
        assert done.stdout == ""


@pytest.mark.parametrize("case", list(_params()))
def test_hostile_input(case: Case, hostile, env, tmp_path):
    """One kind of bad input: exit code, message, no traceback, index unchanged."""
    Path(env["PROVENANCE_DB"]).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(hostile["db"], env["PROVENANCE_DB"])
    work = tmp_path / "case"
    work.mkdir()
    ctx = Ctx(work, hostile["media"], hostile["server"], Path(env["PROVENANCE_DB"]), dict(env),
              data={"report": hostile["report"]})
    try:
        args = case.build(ctx)
        before = _snapshot(ctx.db)
        done = run(ctx, args, timeout=case.max_seconds + 15)
        _check_outcome(case, args, done)
        assert done.seconds <= case.max_seconds, f"took {done.seconds:.1f} s"
        if case.max_rss_mb is not None:
            assert done.max_rss_kb / 1024 <= case.max_rss_mb, f"peak memory {done.max_rss_kb} KB"
        after = _snapshot(ctx.db)
        if case.videos_added == case.sightings_added == 0:
            assert after == before, "the index changed"
        else:
            assert after["list"][0] == after["stats"][0] == 0
            assert after["counts"]["videos"] == before["counts"]["videos"] + case.videos_added
            assert after["counts"]["sightings"] == (before["counts"]["sightings"]
                                                    + case.sightings_added)
            assert len(after["list"][1].splitlines()) == after["counts"]["videos"]
        if case.verify:
            case.verify(ctx, done)
    finally:
        while ctx.cleanups:
            ctx.cleanups.pop()()


def _count_test():
    def test(self=None):
        assert len(CASES) >= 40
        assert len({c.id for c in CASES}) == len(CASES), "duplicate ids"

    test.__doc__ = f"The corpus holds {len(CASES)} kinds of hostile input (at least 40)."
    return test


globals()[f"test_corpus_holds_{len(CASES)}_kinds"] = _count_test()
